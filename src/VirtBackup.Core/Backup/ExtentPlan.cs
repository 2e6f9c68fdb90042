using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// Decides which ranges of a disk a stream carries, from the export's extents as NBD reports them.
/// Pure and exact: the backup loop only walks what this returns.
/// </summary>
public static class ExtentPlan
{
    /// <summary>
    /// Every range of the disk: zero where base:allocation says the range reads as zeros, data
    /// elsewhere. Adjacent ranges of the same kind are merged.
    /// </summary>
    public static IReadOnlyList<DiskExtent> Full(IEnumerable<NbdExtent> allocation) =>
        Merge(allocation.Select(e => new DiskExtent(e.Offset, e.Length, e.IsZero)));

    /// <summary>
    /// Only the ranges the dirty bitmap marks as changed, each split into data and zero by
    /// base:allocation. Both lists are in ascending order without overlaps; the allocation must cover at least
    /// the dirty ranges (the whole disk, or just those ranges).
    /// </summary>
    public static IReadOnlyList<DiskExtent> Incremental(
        IEnumerable<NbdExtent> allocation,
        IEnumerable<NbdExtent> dirty)
    {
        var full = Full(allocation);
        var result = new List<DiskExtent>();
        var i = 0;
        foreach (var d in dirty)
        {
            if (!d.IsDirty)
            {
                continue;
            }

            var dEnd = d.Offset + d.Length;
            while (i < full.Count && full[i].End <= d.Offset)
            {
                i++;
            }

            for (var j = i; j < full.Count && full[j].Offset < dEnd; j++)
            {
                var start = Math.Max(full[j].Offset, d.Offset);
                var end = Math.Min(full[j].End, dEnd);
                result.Add(new DiskExtent(start, end - start, full[j].Zero));
            }
        }

        return Merge(result);
    }

    private static List<DiskExtent> Merge(IEnumerable<DiskExtent> extents)
    {
        var merged = new List<DiskExtent>();
        foreach (var e in extents)
        {
            if (e.Length <= 0)
            {
                continue;
            }

            if (merged.Count > 0 && merged[^1].End == e.Offset && merged[^1].Zero == e.Zero)
            {
                merged[^1] = merged[^1] with { Length = merged[^1].Length + e.Length };
            }
            else
            {
                merged.Add(e);
            }
        }

        return merged;
    }
}
