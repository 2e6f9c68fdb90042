using VirtBackup.Core.Backup;

namespace VirtBackup.Tests.Backup;

public class ExtentPlanTests
{
    private const long M = 1024 * 1024;

    [Fact]
    public void A_full_plan_keeps_data_and_records_zero_and_hole_ranges_as_zero()
    {
        var plan = ExtentPlan.Full([(0, 1 * M, 0), (1 * M, 1 * M, 2), (2 * M, 2 * M, 3), (4 * M, 1 * M, 0), (5 * M, 1 * M, 0)]);

        Assert.Equal(
            [new PlannedExtent(0, 1 * M, false), new PlannedExtent(1 * M, 3 * M, true), new PlannedExtent(4 * M, 2 * M, false)],
            plan);
    }

    [Fact]
    public void An_incremental_plan_is_the_dirty_ranges_split_by_allocation()
    {
        var allocation = new (long, long, uint)[] { (0, 4 * M, 0), (4 * M, 4 * M, 3), (8 * M, 8 * M, 0) };
        var dirty = new (long, long, uint)[] { (0, 1 * M, 0), (1 * M, 1 * M, 1), (2 * M, 1 * M, 0), (3 * M, 6 * M, 1), (9 * M, 7 * M, 0) };

        var plan = ExtentPlan.Incremental(allocation, dirty);

        Assert.Equal(
            [
                new PlannedExtent(1 * M, 1 * M, false),
                new PlannedExtent(3 * M, 1 * M, false),
                new PlannedExtent(4 * M, 4 * M, true),
                new PlannedExtent(8 * M, 1 * M, false),
            ],
            plan);
    }

    [Fact]
    public void An_incremental_plan_of_a_clean_bitmap_is_empty() =>
        Assert.Empty(ExtentPlan.Incremental([(0, 8 * M, 0)], [(0, 8 * M, 0)]));

    [Fact]
    public void Splitting_cuts_data_at_member_boundaries_and_leaves_zero_ranges_whole()
    {
        var pieces = ExtentPlan.SplitData(
            [new PlannedExtent(3 * M, 6 * M, false), new PlannedExtent(9 * M, 20 * M, true), new PlannedExtent(29 * M, 4 * M, false)],
            4 * M).ToList();

        Assert.Equal(
            [
                new PlannedExtent(3 * M, 1 * M, false),
                new PlannedExtent(4 * M, 4 * M, false),
                new PlannedExtent(8 * M, 1 * M, false),
                new PlannedExtent(9 * M, 20 * M, true),
                new PlannedExtent(29 * M, 3 * M, false),
                new PlannedExtent(32 * M, 1 * M, false),
            ],
            pieces);
    }
}
