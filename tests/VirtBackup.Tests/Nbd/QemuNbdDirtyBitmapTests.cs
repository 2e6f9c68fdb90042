using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

public sealed class QemuNbdDirtyBitmapTests
{
    private const long Ki = 1024;
    private const long Mi = 1024 * Ki;

    [Fact(Timeout = 60000)]
    public async Task Dirty_bitmap_context_from_qemu_nbd_reports_exactly_the_written_ranges()
    {
        using var dir = new TempDir();
        var image = dir.File("dirty.qcow2");
        await Tool.CreateQcow2Async(image, "8M");
        await Tool.RunAsync("qemu-img", "bitmap", "--add", "--enable", image, "b0");
        // 64 KiB bitmap granularity: aligned writes, so the dirty ranges are exactly these.
        await Tool.RunAsync("qemu-io", "-f", "qcow2",
            "-c", "write -P 0x33 128K 64K", "-c", "write -P 0x44 1M 192K", "-c", "write -z 3M 64K", image);
        await using var server = await QemuNbdServer.StartAsync(dir, image, "", "-r", "-B", "b0");
        var options = new NbdConnectOptions { MetaContexts = ["base:allocation", "qemu:dirty-bitmap:b0"] };
        await using var client = await NbdClient.ConnectAsync(server.Uri, options);

        var dirty = await client.GetExtentsAsync("qemu:dirty-bitmap:b0", 0, client.ExportSize).ToListAsync();
        var allocation = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal(
        [
            new NbdExtent(0, 128 * Ki, 0),
            new NbdExtent(128 * Ki, 64 * Ki, 1),
            new NbdExtent(192 * Ki, 832 * Ki, 0),
            new NbdExtent(1 * Mi, 192 * Ki, 1),
            new NbdExtent(1 * Mi + 192 * Ki, 1856 * Ki, 0),
            new NbdExtent(3 * Mi, 64 * Ki, 1),
            new NbdExtent(3 * Mi + 64 * Ki, 5 * Mi - 64 * Ki, 0),
        ], dirty);
        Assert.Equal(
        [
            new NbdExtent(0, 128 * Ki, 3),
            new NbdExtent(128 * Ki, 64 * Ki, 0),
            new NbdExtent(192 * Ki, 832 * Ki, 3),
            new NbdExtent(1 * Mi, 192 * Ki, 0),
            new NbdExtent(1 * Mi + 192 * Ki, 7 * Mi - 192 * Ki, 3),
        ], allocation);
        Assert.Equal(2, client.MetaContexts.Count);
        Assert.NotEqual(client.MetaContexts["base:allocation"], client.MetaContexts["qemu:dirty-bitmap:b0"]);
    }

    [Fact(Timeout = 60000)]
    public async Task Only_dirty_extents_are_flagged_dirty_when_a_backup_walks_them()
    {
        using var dir = new TempDir();
        var image = dir.File("walk.qcow2");
        await Tool.CreateQcow2Async(image, "4M", "write -P 0x55 0 4M");
        await Tool.RunAsync("qemu-img", "bitmap", "--add", "--enable", image, "inc");
        await Tool.RunAsync("qemu-io", "-f", "qcow2", "-c", "write -P 0x66 2M 64K", image);
        await using var server = await QemuNbdServer.StartAsync(dir, image, "vm", "-r", "-B", "inc");
        await using var client = await NbdClient.ConnectAsync(server.Uri, new NbdConnectOptions { MetaContexts = ["qemu:dirty-bitmap:inc"] });

        var changed = new List<byte[]>();
        await foreach (var extent in client.GetExtentsAsync("qemu:dirty-bitmap:inc", 0, client.ExportSize))
        {
            if (!extent.IsDirty)
            {
                continue;
            }

            var data = new byte[extent.Length];
            await client.ReadAsync(extent.Offset, data);
            changed.Add(data);
        }

        var expected = new byte[64 * Ki];
        expected.AsSpan().Fill(0x66);
        Assert.Single(changed);
        Assert.Equal(expected, changed[0]);
    }
}
