using System.Text.Json;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>The write path against a writable qemu-nbd on a fresh qcow2 (discard=unmap so zeroing can deallocate).</summary>
public sealed class QemuNbdWriteTests
{
    private const long Ki = 1024;
    private const long Mi = 1024 * Ki;
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    /// <summary>A writable qemu-nbd on a fresh qcow2 of <paramref name="size"/> and our client connected to it.</summary>
    private sealed class FreshExport : IAsyncDisposable
    {
        private readonly TempDir _dir;

        private FreshExport(TempDir dir, QemuNbdServer server, NbdClient client) => (_dir, Server, Client) = (dir, server, client);

        public QemuNbdServer Server { get; }

        public NbdClient Client { get; }

        public static async Task<FreshExport> StartAsync(string size, NbdConnectOptions? options = null)
        {
            var dir = new TempDir();
            var image = dir.File("fresh.qcow2");
            await Tool.CreateQcow2Async(image, size);
            var server = await QemuNbdServer.StartAsync(dir, image, "", "--discard=unmap", "--detect-zeroes=off");
            var client = await NbdClient.ConnectAsync(server.Uri, options);
            return new FreshExport(dir, server, client);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            _dir.Dispose();
        }
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>qemu-img map: per range, whether it reads as data or zeroes and whether it occupies host clusters.</summary>
    private static async Task<List<(long Start, long Length, bool Data, bool Zero, bool HostAllocated)>> QemuImgMapAsync(string image)
    {
        var json = await Tool.RunAsync("qemu-img", "map", "-U", "-f", "qcow2", "--output=json", image);
        return JsonDocument.Parse(json).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64(),
                e.GetProperty("data").GetBoolean(), e.GetProperty("zero").GetBoolean(), e.TryGetProperty("offset", out var _)))
            .ToList();
    }

    [Fact(Timeout = 60000)]
    public async Task Written_data_reads_back_exactly_and_is_reported_allocated()
    {
        await using var export = await FreshExport.StartAsync("16M", WithAllocation);
        var client = export.Client;
        var data = Pattern((int)(3 * Mi), 1);

        await client.WriteAsync(Mi, data);
        await client.FlushAsync();
        var back = new byte[5 * Mi];
        await client.ReadAsync(0, back);
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.False(client.ReadOnly);
        Assert.True(client.CanTrim && client.CanWriteZeroes && client.CanFlush);
        Assert.True(back.AsSpan(0, (int)Mi).SequenceEqual(new byte[Mi]));
        Assert.True(back.AsSpan((int)Mi, data.Length).SequenceEqual(data));
        Assert.True(back.AsSpan((int)(4 * Mi)).SequenceEqual(new byte[Mi]));
        Assert.Equal([new NbdExtent(0, Mi, 3), new NbdExtent(Mi, 3 * Mi, 0), new NbdExtent(4 * Mi, 12 * Mi, 3)], extents);
    }

    [Fact(Timeout = 60000)]
    public async Task Write_zeroes_without_no_hole_keeps_the_image_thin()
    {
        await using var export = await FreshExport.StartAsync("4M", WithAllocation);
        var client = export.Client;
        var data = Pattern((int)(2 * Mi), 2);

        await client.WriteAsync(0, data);
        await client.WriteZeroesAsync(512 * Ki, Mi);
        await client.FlushAsync();
        var back = new byte[2 * Mi];
        await client.ReadAsync(0, back);
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();
        var map = await QemuImgMapAsync(export.Server.Image);

        Assert.True(back.AsSpan(0, (int)(512 * Ki)).SequenceEqual(data.AsSpan(0, (int)(512 * Ki))));
        Assert.True(back.AsSpan((int)(512 * Ki), (int)Mi).SequenceEqual(new byte[Mi]));
        Assert.True(back.AsSpan((int)(1536 * Ki)).SequenceEqual(data.AsSpan((int)(1536 * Ki))));
        Assert.Equal(
        [
            new NbdExtent(0, 512 * Ki, 0),
            new NbdExtent(512 * Ki, Mi, 3),
            new NbdExtent(1536 * Ki, 512 * Ki, 0),
            new NbdExtent(2 * Mi, 2 * Mi, 3),
        ], extents);
        Assert.Contains((512 * Ki, Mi, false, true, false), map); // zero clusters, no host storage
    }

    [Fact(Timeout = 60000)]
    public async Task Write_zeroes_with_no_hole_reads_as_zeroes_and_keeps_the_clusters_allocated()
    {
        await using var export = await FreshExport.StartAsync("4M", WithAllocation);
        var client = export.Client;

        await client.WriteAsync(0, Pattern((int)Mi, 3));
        await client.WriteZeroesAsync(0, Mi, noHole: true);
        await client.FlushAsync(); // so qemu-img map sees qemu-nbd's metadata
        var back = new byte[Mi];
        back.AsSpan().Fill(0xEE);
        await client.ReadAsync(0, back);
        var extents = await client.BlockStatusAsync("base:allocation", 0, Mi);
        var map = await QemuImgMapAsync(export.Server.Image);

        Assert.True(back.AsSpan().SequenceEqual(new byte[Mi]));
        // qemu reports allocated zero clusters as hole|zero too; only the image map shows they kept their storage.
        Assert.Equal([new NbdExtent(0, Mi, 3)], extents);
        Assert.Contains((0, Mi, false, true, true), map);
    }

    [Fact(Timeout = 60000)]
    public async Task Trim_deallocates_the_range_on_qcow2()
    {
        await using var export = await FreshExport.StartAsync("4M", WithAllocation);
        var client = export.Client;

        await client.WriteAsync(0, Pattern((int)(2 * Mi), 4));
        await client.TrimAsync(Mi, Mi);
        await client.FlushAsync();
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal([new NbdExtent(0, Mi, 0), new NbdExtent(Mi, 3 * Mi, 3)], extents);
    }

    [Fact(Timeout = 60000)]
    public async Task A_write_larger_than_the_maximum_block_size_is_split_and_reads_back_exactly()
    {
        await using var export = await FreshExport.StartAsync("48M");
        var client = export.Client;
        var data = Pattern((int)(40 * Mi), 5);

        await client.WriteAsync(4 * Mi + 512, data);
        var back = new byte[data.Length];
        await client.ReadAsync(4 * Mi + 512, back);

        Assert.Equal(32 * Mi, client.MaximumBlockSize);
        Assert.True(back.AsSpan().SequenceEqual(data));
    }
}
