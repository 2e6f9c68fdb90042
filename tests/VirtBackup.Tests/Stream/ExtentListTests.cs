using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

public sealed class ExtentListTests
{
    [Fact]
    public void Extents_read_back_exactly_across_chunk_boundaries_with_merges_at_every_kind_of_position()
    {
        var list = new ExtentList();
        var expected = new List<DiskExtent>();
        long offset = 0;
        var merged = false;
        for (var i = 0; i < 10_000; i++)
        {
            // Kinds alternate, except that the extent after the first, last or 1,000th-and-7th of a chunk of 4,096
            // continues it (a merge, once): merges land at every kind of position in a chunk.
            var merge = !merged && list.Count % 4096 is 0 or 1 or 1007 && list.Count > 0;
            merged = merge;
            var zero = merge ? expected[^1].Zero : expected.Count == 0 || !expected[^1].Zero;
            var extent = new DiskExtent(offset, 512 + i % 7 * 4096, zero);
            offset = extent.End;
            list.AddMerged(extent);
            if (expected.Count > 0 && expected[^1].End == extent.Offset && expected[^1].Zero == extent.Zero)
            {
                expected[^1] = expected[^1] with { Length = expected[^1].Length + extent.Length };
            }
            else
            {
                expected.Add(extent);
            }
        }

        Assert.Equal(expected.Count, list.Count);
        Assert.Equal(expected, list);
        Assert.Equal(expected[4096], list[4096]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[list.Count]);
    }

    [Fact]
    public void A_length_from_2_to_the_62_on_is_refused_as_it_would_take_the_zero_flag()
    {
        var list = new ExtentList();
        list.Add(new DiskExtent(1L << 50, (1L << 62) - 1, true));

        Assert.Equal(new DiskExtent(1L << 50, (1L << 62) - 1, true), list[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list.Add(new DiskExtent(0, 1L << 62, false)));
        Assert.Throws<ArgumentOutOfRangeException>(() => list.AddMerged(new DiskExtent(list[0].End, 1, true)));
    }
}
