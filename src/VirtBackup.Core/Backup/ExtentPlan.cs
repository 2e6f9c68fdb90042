namespace VirtBackup.Core.Backup;

/// <summary>
/// Decides which ranges of a disk a stream carries, from the export's extents. Pure and exact: the
/// backup loop only walks what this returns. Extents are (offset, length, flags) as NBD reports them.
/// </summary>
public static class ExtentPlan
{
    /// <summary>base:allocation: NBD_STATE_HOLE.</summary>
    public const uint StateHole = 1;

    /// <summary>base:allocation: NBD_STATE_ZERO.</summary>
    public const uint StateZero = 2;

    /// <summary>qemu:dirty-bitmap:*: NBD_STATE_DIRTY.</summary>
    public const uint StateDirty = 1;

    /// <summary>
    /// Every range of the disk: zero where base:allocation says the range reads as zeros, data
    /// elsewhere. Adjacent ranges of the same kind are merged.
    /// </summary>
    public static IReadOnlyList<PlannedExtent> Full(IEnumerable<(long Offset, long Length, uint Flags)> allocation) =>
        Merge(allocation.Select(e => new PlannedExtent(e.Offset, e.Length, (e.Flags & StateZero) != 0)));

    /// <summary>
    /// Only the ranges the dirty bitmap marks as changed, each split into data and zero by
    /// base:allocation. Both lists must cover the same range in ascending order.
    /// </summary>
    public static IReadOnlyList<PlannedExtent> Incremental(
        IEnumerable<(long Offset, long Length, uint Flags)> allocation,
        IEnumerable<(long Offset, long Length, uint Flags)> dirty)
    {
        var full = Full(allocation);
        var result = new List<PlannedExtent>();
        var i = 0;
        foreach (var d in dirty)
        {
            if ((d.Flags & StateDirty) == 0)
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
                result.Add(new PlannedExtent(start, end - start, full[j].Zero));
            }
        }

        return Merge(result);
    }

    /// <summary>
    /// Cuts data extents at every multiple of <paramref name="memberSize"/> so that one piece never
    /// crosses a member boundary (zero extents stay whole: they are recorded, not stored).
    /// </summary>
    public static IEnumerable<PlannedExtent> SplitData(IEnumerable<PlannedExtent> extents, long memberSize)
    {
        foreach (var e in extents)
        {
            if (e.Zero)
            {
                yield return e;
                continue;
            }

            var offset = e.Offset;
            while (offset < e.End)
            {
                var boundary = (offset / memberSize + 1) * memberSize;
                var end = Math.Min(boundary, e.End);
                yield return new PlannedExtent(offset, end - offset, false);
                offset = end;
            }
        }
    }

    private static List<PlannedExtent> Merge(IEnumerable<PlannedExtent> extents)
    {
        var merged = new List<PlannedExtent>();
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
