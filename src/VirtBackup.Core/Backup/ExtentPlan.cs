using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// Decides which ranges of a disk a stream carries, from the export's extents as NBD reports them.
/// Pure and exact: the backup loop only walks what this returns. Built as the extents arrive, into one compact
/// <see cref="ExtentList"/> (no list of what NBD reported is kept).
/// </summary>
public static class ExtentPlan
{
    /// <summary>
    /// Every range of the disk: zero where base:allocation says the range reads as zeros, data
    /// elsewhere. Adjacent ranges of the same kind are merged.
    /// </summary>
    public static ExtentList Full(IEnumerable<NbdExtent> allocation)
    {
        var plan = new ExtentList();
        foreach (var e in allocation)
        {
            AddAllocation(plan, e);
        }

        return plan;
    }

    /// <summary>
    /// Only the ranges the dirty bitmap marks as changed, each split into data and zero by
    /// base:allocation. Both lists are in ascending order without overlaps; the allocation must cover at least
    /// the dirty ranges (the whole disk, or just those ranges).
    /// </summary>
    public static ExtentList Incremental(IEnumerable<NbdExtent> allocation, IEnumerable<NbdExtent> dirty)
    {
        var changed = new ExtentList();
        foreach (var d in dirty)
        {
            AddDirty(changed, d);
        }

        var plan = new DirtyIntersection(changed);
        foreach (var a in allocation)
        {
            plan.Add(a);
        }

        return plan.Plan;
    }

    /// <summary>Appends one base:allocation extent to a full plan.</summary>
    internal static void AddAllocation(ExtentList plan, NbdExtent allocation)
    {
        if (allocation.Length > 0)
        {
            plan.AddMerged(new DiskExtent(allocation.Offset, allocation.Length, allocation.IsZero));
        }
    }

    /// <summary>Appends one dirty-bitmap extent to the changed ranges when it is dirty (as data: the kind is allocation's to say).</summary>
    internal static void AddDirty(ExtentList changed, NbdExtent dirty)
    {
        if (dirty.IsDirty && dirty.Length > 0)
        {
            changed.AddMerged(new DiskExtent(dirty.Offset, dirty.Length, false));
        }
    }

    /// <summary>An incremental plan built from base:allocation extents in ascending order: their parts inside the changed ranges.</summary>
    internal sealed class DirtyIntersection(ExtentList changed)
    {
        private int _next;

        public ExtentList Changed { get; } = changed;

        public ExtentList Plan { get; } = new();

        public void Add(NbdExtent allocation)
        {
            while (_next < Changed.Count && Changed[_next].End <= allocation.Offset)
            {
                _next++;
            }

            for (var j = _next; j < Changed.Count && Changed[j].Offset < allocation.End; j++)
            {
                var start = Math.Max(Changed[j].Offset, allocation.Offset);
                var end = Math.Min(Changed[j].End, allocation.End);
                if (end > start)
                {
                    Plan.AddMerged(new DiskExtent(start, end - start, allocation.IsZero));
                }
            }
        }
    }
}
