using VirtBackup.Core.Backup;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;
using VirtBackup.Tests.Nbd;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Backup;

/// <summary>The backup's plan and read path against qemu-nbd: the plan built as block status arrives, the read skipping zero extents.</summary>
public sealed class DiskStreamerTests(QemuNbdLayoutFixture layout) : IClassFixture<QemuNbdLayoutFixture>
{
    private const long Ki = 1024;
    private const long Mi = 1024 * Ki;

    [Fact(Timeout = 60_000)]
    public async Task A_full_plan_of_the_layout_is_its_merged_allocation_and_the_read_hands_over_exactly_its_data_extents()
    {
        await using var disk = await OpenAsync(layout.Server.Uri, null);
        await disk.MappedAsync();

        Assert.Null(disk.Plan); // mapped while read, in map pieces: one for this 64 MiB disk
        Assert.Equal(
        [
            new DiskExtent(0, 1 * Mi, false),
            new DiskExtent(1 * Mi, 5 * Mi, true),
            new DiskExtent(6 * Mi, 512 * Ki, false),
            new DiskExtent(6 * Mi + 512 * Ki, 512 * Ki, true),
            new DiskExtent(7 * Mi, 64 * Ki, false),
            new DiskExtent(7 * Mi + 64 * Ki, 33 * Mi - 64 * Ki, true),
            new DiskExtent(40 * Mi, 64 * Ki, false),
            new DiskExtent(40 * Mi + 64 * Ki, 24 * Mi - 64 * Ki, true),
        ], Assert.Single(await PiecesAsync(disk)));
        Assert.Equal(1 * Mi + 512 * Ki + 64 * Ki + 64 * Ki, disk.DataBytes);
        Assert.Equal([(0, 1 * Mi), (6 * Mi, 512 * Ki), (7 * Mi, 64 * Ki), (40 * Mi, 64 * Ki)], await ReadAllAsync(disk, layout.Expected));
    }

    [Theory(Timeout = 60_000)]
    [InlineData(3)]
    [InlineData(20)]
    public async Task An_incremental_plan_is_the_dirty_ranges_split_by_allocation_with_few_or_many_ranges(int dirtyRanges)
    {
        // On this 8 MiB disk, more than 16 dirty ranges: one base:allocation map of the whole disk; fewer: one query per range.
        using var dir = new TempDir();
        var image = dir.File("inc.qcow2");
        await Tool.CreateQcow2Async(image, "8M", "write -P 0x55 0 64K");
        await Tool.RunAsync("qemu-img", "bitmap", "--add", "--enable", image, "b0");
        var writes = new List<string>();
        var expected = new List<DiskExtent>();
        for (var i = 0; i < dirtyRanges; i++)
        {
            // 64 KiB bitmap granularity: every other 64 KiB from 256 KiB; every third one written as zeros.
            var offset = 256 * Ki + i * 128 * Ki;
            var zero = i % 3 == 2;
            writes.AddRange(["-c", zero ? $"write -z {offset} 64K" : $"write -P 0x{0x60 + i:x2} {offset} 64K"]);
            expected.Add(new DiskExtent(offset, 64 * Ki, zero));
        }

        await Tool.RunAsync("qemu-io", ["-f", "qcow2", .. writes, image]);
        await using var server = await QemuNbdServer.StartAsync(dir, image, "", "-r", "-B", "b0");

        await using var disk = await OpenAsync(server.Uri, "b0");

        Assert.Equal(expected, disk.Plan);
        Assert.Equal(expected.Where(e => !e.Zero).Select(e => (e.Offset, e.Length)), await ReadAllAsync(disk, null));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_full_read_of_a_40_GiB_disk_maps_it_in_three_pieces_cut_at_16_GiB_and_reads_every_data_extent_once()
    {
        const long Gi = 1024 * Mi;
        using var dir = new TempDir();
        var image = dir.File("big.qcow2");
        // Data at 0, data across the 16 GiB piece boundary, zeros in the second piece, data in the last (partial) piece.
        await Tool.CreateQcow2Async(image, "40G",
            "write -P 0x11 0 64K", $"write -P 0x22 {16 * Gi - 64 * Ki} 128K", $"write -z {20 * Gi} 64K", $"write -P 0x33 {39 * Gi} 64K");
        await using var server = await QemuNbdServer.StartAsync(dir, image, "", "-r");
        await using var disk = await OpenAsync(server.Uri, null);

        var pieces = await PiecesAsync(disk);

        Assert.Equal(3, pieces.Count);
        Assert.Equal(
            [
                [new(0, 64 * Ki, false), new(64 * Ki, 16 * Gi - 128 * Ki, true), new(16 * Gi - 64 * Ki, 64 * Ki, false)],
                [new(16 * Gi, 64 * Ki, false), new(16 * Gi + 64 * Ki, 16 * Gi - 64 * Ki, true)],
                [new(32 * Gi, 7 * Gi, true), new(39 * Gi, 64 * Ki, false), new(39 * Gi + 64 * Ki, Gi - 64 * Ki, true)],
            ],
            pieces.Select(p => p.ToArray()).ToList<DiskExtent[]>());
        Assert.Equal(256 * Ki, disk.DataBytes);
        Assert.NotNull(await disk.MappedAsync());
    }

    /// <summary>The disk's map pieces, in order (taking them: a disk being mapped gives its pieces once).</summary>
    private static async Task<List<IReadOnlyList<DiskExtent>>> PiecesAsync(DiskSource disk)
    {
        var pieces = new List<IReadOnlyList<DiskExtent>>();
        await foreach (var (extents, whole) in disk.PiecesAsync(CancellationToken.None))
        {
            Assert.False(whole);
            pieces.Add(extents.ToList());
        }

        return pieces;
    }

    [Theory]
    [InlineData(8 * Mi, 16)]
    [InlineData(4 * 1024 * Mi, 256)]
    [InlineData(1024L * 1024 * Mi, 65536)]
    public void An_incremental_maps_the_whole_disk_only_above_one_dirty_range_per_16_MiB_of_disk(long size, long ranges) =>
        Assert.Equal(ranges, DiskStreamer.MaxAllocationQueries(size));

    private static Task<DiskSource> OpenAsync(NbdUri uri, string? bitmap) =>
        DiskStreamer.OpenAsync("vda", uri, bitmap, tls: null, CancellationToken.None);

    /// <summary>The ranges the read handed over (chunks of one range joined), each checked against <paramref name="image"/> when given.</summary>
    private static async Task<List<(long Offset, long Length)>> ReadAllAsync(DiskSource disk, byte[]? image)
    {
        var ranges = new List<(long Offset, long Length)>();
        await DiskStreamer.ReadDataAsync(disk, (offset, data) =>
        {
            if (image is not null)
            {
                Assert.True(image.AsSpan((int)offset, data.Length).SequenceEqual(data.Span), $"bytes at {offset} differ");
            }

            if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == offset)
            {
                ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + data.Length);
            }
            else
            {
                ranges.Add((offset, data.Length));
            }

            return ValueTask.CompletedTask;
        }, CancellationToken.None);
        return ranges;
    }
}
