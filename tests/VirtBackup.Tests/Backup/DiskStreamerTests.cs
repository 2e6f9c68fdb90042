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
        var disk = await OpenAsync(layout.Server.Uri, null);
        await using var reader = disk.Reader;

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
        ], disk.Plan);
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

        var disk = await OpenAsync(server.Uri, "b0");
        await using var reader = disk.Reader;

        Assert.Equal(expected, disk.Plan);
        Assert.Equal(expected.Where(e => !e.Zero).Select(e => (e.Offset, e.Length)), await ReadAllAsync(disk, null));
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
