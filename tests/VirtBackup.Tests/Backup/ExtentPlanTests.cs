namespace VirtBackup.Tests.Backup;

public class ExtentPlanTests
{
    private const long M = 1024 * 1024;

    /// <summary>
    /// The plan of the dirty ranges [1M, 2M) and [3M, 9M) of a disk whose [4M, 8M) reads as zeroes: data, data,
    /// the zero range, data.
    /// </summary>
    private static readonly DiskExtent[] PlanOfTheDirtyRanges =
    [
        new DiskExtent(1 * M, 1 * M, false),
        new DiskExtent(3 * M, 1 * M, false),
        new DiskExtent(4 * M, 4 * M, true),
        new DiskExtent(8 * M, 1 * M, false),
    ];

    [Fact]
    public void A_full_plan_keeps_data_and_records_zero_and_hole_ranges_as_zero()
    {
        var plan = ExtentPlan.Full([new NbdExtent(0, 1 * M, 0), new NbdExtent(1 * M, 1 * M, 2), new NbdExtent(2 * M, 2 * M, 3), new NbdExtent(4 * M, 1 * M, 0), new NbdExtent(5 * M, 1 * M, 0)]);

        Assert.Equal(
            [new DiskExtent(0, 1 * M, false), new DiskExtent(1 * M, 3 * M, true), new DiskExtent(4 * M, 2 * M, false)],
            plan);
    }

    [Fact]
    public void An_incremental_plan_is_the_dirty_ranges_split_by_allocation()
    {
        var allocation = new NbdExtent[] { new NbdExtent(0, 4 * M, 0), new NbdExtent(4 * M, 4 * M, 3), new NbdExtent(8 * M, 8 * M, 0) };
        var dirty = new NbdExtent[] { new NbdExtent(0, 1 * M, 0), new NbdExtent(1 * M, 1 * M, 1), new NbdExtent(2 * M, 1 * M, 0), new NbdExtent(3 * M, 6 * M, 1), new NbdExtent(9 * M, 7 * M, 0) };

        var plan = ExtentPlan.Incremental(allocation, dirty);

        Assert.Equal(PlanOfTheDirtyRanges, plan);
    }

    [Fact]
    public void An_incremental_plan_from_allocation_of_the_dirty_ranges_only_equals_the_one_from_the_whole_disk()
    {
        var dirty = new NbdExtent[] { new NbdExtent(1 * M, 1 * M, 1), new NbdExtent(3 * M, 6 * M, 1) };
        // base:allocation asked about [1M, 2M) and [3M, 9M) only, as DiskStreamer does for an incremental.
        var allocation = new NbdExtent[] { new NbdExtent(1 * M, 1 * M, 0), new NbdExtent(3 * M, 1 * M, 0), new NbdExtent(4 * M, 4 * M, 3), new NbdExtent(8 * M, 1 * M, 0) };

        var plan = ExtentPlan.Incremental(allocation, dirty);

        Assert.Equal(PlanOfTheDirtyRanges, plan);
    }

    [Fact]
    public void An_incremental_plan_of_a_clean_bitmap_is_empty() =>
        Assert.Empty(ExtentPlan.Incremental([new NbdExtent(0, 8 * M, 0)], [new NbdExtent(0, 8 * M, 0)]));
}
