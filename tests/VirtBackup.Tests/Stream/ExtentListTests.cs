using VirtBackup.Core.Stream;
using Xunit.Abstractions;

namespace VirtBackup.Tests.Stream;

/// <summary>In the memory collection: one test reads the process's heap, which tests running beside it would disturb.</summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class ExtentListTests(ITestOutputHelper output)
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

    [Fact]
    public void Any_offsets_read_back_exactly_even_out_of_order_as_a_hostile_map_may_give_them_before_it_is_checked()
    {
        var random = new Random(14);
        var expected = new List<DiskExtent>();
        var list = new ExtentList();
        for (var i = 0; i < 5_000; i++)
        {
            var offset = (i % 3) switch
            {
                0 => random.NextInt64(0, long.MaxValue),
                1 => i == 1 ? long.MaxValue : random.NextInt64(0, 1L << 20),
                _ => expected.Count > 0 ? expected[^1].Offset + expected[^1].Length : 0,
            };
            var extent = new DiskExtent(offset, random.NextInt64(0, 1L << 62), random.Next(2) == 0);
            list.Add(extent);
            expected.Add(extent);
        }

        Assert.Equal(expected, list);
        foreach (var index in Enumerable.Range(0, 2_000).Select(_ => random.Next(expected.Count)))
        {
            Assert.Equal(expected[index], list[index]);
        }
    }

    [Fact]
    public void Sector_aligned_extents_stored_in_sectors_read_back_exactly_at_the_extremes_and_out_of_order()
    {
        var random = new Random(512);
        const long sectors = ~511L;
        var expected = new List<DiskExtent>
        {
            new(long.MaxValue & sectors, (1L << 62) - 512, true),
            new(0, 512, false),
            new(long.MaxValue & sectors, 512, false),
            new(512, 1L << 61, true),
            new(513, 512, false),
            new(1024, 1023, true),
            new(2048, 0, false),
        };
        for (var i = 0; i < 5_000; i++)
        {
            var offset = i % 2 == 0 ? random.NextInt64(0, long.MaxValue) & sectors : expected[^1].End + random.Next(0, 64) * 512L;
            expected.Add(new DiskExtent(offset, random.NextInt64(0, 1L << 40) & sectors, random.Next(2) == 0));
        }

        var list = new ExtentList();
        expected.ForEach(list.Add);

        Assert.Equal(expected, list);
        foreach (var index in Enumerable.Range(0, 2_000).Select(_ => random.Next(expected.Count)))
        {
            Assert.Equal(expected[index], list[index]);
        }
    }

    [Fact]
    public void Readers_on_many_threads_each_going_their_own_way_read_the_same_extents()
    {
        var list = new ExtentList();
        // 200,000 extents: more checkpoints than one checkpoint block holds; every 11th extent is not sector-aligned.
        for (var i = 0; i < 200_000; i++)
        {
            list.Add(new DiskExtent(i * 65536L, 4096 + i % 5 * 512 + (i % 11 == 0 ? 1 : 0), i % 7 == 0));
        }

        Parallel.For(0, 8, reader =>
        {
            for (var n = 0; n < 200_000; n++)
            {
                var i = reader % 2 == 0 ? n : 199_999 - n;
                Assert.Equal(new DiskExtent(i * 65536L, 4096 + i % 5 * 512 + (i % 11 == 0 ? 1 : 0), i % 7 == 0), list[i]);
            }
        });
    }

    [Fact]
    public void A_million_scattered_4_KiB_extents_and_their_gaps_take_under_3_bytes_each_where_they_took_16()
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var list = new ExtentList();
        for (var i = 0; i < 500_000; i++)
        {
            list.AddMerged(new DiskExtent(i * 16384L, 4096, false));
            list.AddMerged(new DiskExtent(i * 16384L + 4096, 12288, true));
        }

        var held = GC.GetTotalMemory(forceFullCollection: true) - before;
        GC.KeepAlive(list);

        Assert.Equal(1_000_000, list.Count);
        Assert.Equal(new DiskExtent(499_999 * 16384L + 4096, 12288, true), list[^1]);
        output.WriteLine($"held {held} bytes");
        Assert.InRange(held, 0, 3_000_000); // measured 2,297,712; 4,591,808 before gaps and lengths in sectors; 16,000,000 as structs
    }
}
