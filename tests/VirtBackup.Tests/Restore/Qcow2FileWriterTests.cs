using System.Text.Json;
using VirtBackup.Core.Restore.Qcow2;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>
/// The qcow2 images a full restore writes itself, checked by QEMU's own tools: <c>qemu-img check</c> finds no error or
/// leak, <c>qemu-img compare</c> finds the same bytes as a raw file given the same writes, and <c>qemu-img map</c>
/// shows data only where something other than zeros was written.
/// </summary>
public sealed class Qcow2FileWriterTests
{
    private const long GiB = 1L << 30;

    [Fact(Timeout = 60_000)]
    public async Task Writes_in_disk_order_give_an_image_qemu_img_checks_clean_with_the_same_bytes_as_a_raw_file()
    {
        using var dir = new TempDir();
        var writes = new List<(long Offset, byte[] Data)>
        {
            (0, Pattern(65536, 1)), // a whole cluster
            (65536 + 512, Pattern(1000, 2)), // inside one cluster
            (3 * 65536 - 100, Pattern(300, 3)), // across a cluster boundary
            (600L << 20, Pattern(5 << 20, 4)), // in the second L2 table's range, many clusters in one call
            (3 * GiB - 4096, Pattern(4096, 5)), // the last 4 KiB
        };

        var (image, raw) = await WriteBothAsync(dir, 3 * GiB, writes);

        Assert.Equal("No errors were found on the image.", await CheckAsync(image));
        Assert.Equal("Images are identical.", await CompareAsync(image, raw));
    }

    [Fact(Timeout = 60_000)]
    public async Task Writes_out_of_order_and_over_clusters_already_written_still_give_the_same_bytes()
    {
        using var dir = new TempDir();
        var writes = new List<(long Offset, byte[] Data)>
        {
            (2 * GiB, Pattern(65536 * 3, 1)),
            (4096, Pattern(8192, 2)),
            (2 * GiB + 1000, Pattern(70_000, 3)), // back into the first L2 table's clusters after leaving it
            (8192, Pattern(65536, 4)), // over the cluster written second, partly
            (2 * GiB, Pattern(65536, 5)), // a whole cluster written again
            (0, Pattern(100, 6)),
        };

        var (image, raw) = await WriteBothAsync(dir, 3 * GiB, writes);

        Assert.Equal("No errors were found on the image.", await CheckAsync(image));
        Assert.Equal("Images are identical.", await CompareAsync(image, raw));
    }

    [Fact(Timeout = 60_000)]
    public async Task Clusters_written_with_zeros_stay_unallocated_and_the_image_holds_only_its_data_clusters_and_metadata()
    {
        using var dir = new TempDir();
        var writes = new List<(long Offset, byte[] Data)>
        {
            (0, new byte[1 << 20]),
            (1 << 20, Pattern(65536, 1)),
            ((1 << 20) + 65536, new byte[65536]),
        };

        var (image, _) = await WriteBothAsync(dir, 1 * GiB, writes);

        var map = JsonDocument.Parse(await Tool.RunAsync("qemu-img", "map", "--output=json", "-f", "qcow2", image)).RootElement
            .EnumerateArray().Where(e => e.GetProperty("data").GetBoolean())
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64()));
        Assert.Equal([(1L << 20, 65536L)], map);
        // header, L1 table, one L2 table, one data cluster, refcount table, refcount block
        Assert.Equal(6 * 65536, new FileInfo(image).Length);
    }

    [Fact(Timeout = 60_000)]
    public async Task Its_header_says_what_qemu_img_create_says_for_the_same_size()
    {
        using var dir = new TempDir();
        var ours = dir.File("ours.qcow2");
        var qemus = dir.File("qemu.qcow2");
        await using (var writer = Qcow2FileWriter.Create(ours, (1L << 40) + 100))
        {
            await writer.FinishAsync(CancellationToken.None);
        }

        await Tool.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=off", qemus, ((1L << 40) + 100).ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(await InfoAsync(qemus), await InfoAsync(ours));
        Assert.Equal("No errors were found on the image.", await CheckAsync(ours));
    }

    [Theory]
    [InlineData(3, 1, 1)] // header, L1 and a data cluster: one refcount block and one table cluster count all five
    [InlineData(32_766, 1, 1)] // exactly 32,768 with the block and the table
    [InlineData(32_767, 2, 1)] // one more: a second block
    [InlineData(8192L * 32_768, 8193, 2)] // 16 TiB of clusters: the table needs a second cluster
    public void Refcount_blocks_and_table_count_the_image_and_themselves(long clusters, long blocks, long tableClusters)
    {
        Assert.Equal((blocks, tableClusters), Qcow2Layout.RefcountStructures(clusters));
    }

    [Fact]
    public async Task A_write_past_the_virtual_size_is_refused()
    {
        using var dir = new TempDir();
        await using var writer = Qcow2FileWriter.Create(dir.File("a.qcow2"), 1 << 20);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => writer.WriteAsync((1 << 20) - 10, new byte[11], CancellationToken.None));
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<(string Image, string Raw)> WriteBothAsync(TempDir dir, long size, IEnumerable<(long Offset, byte[] Data)> writes)
    {
        var image = dir.File("restored.qcow2");
        var raw = dir.File("expected.raw");
        await using (var file = new FileStream(raw, FileMode.CreateNew, FileAccess.Write))
        {
            file.SetLength(size);
        }

        await using (var writer = Qcow2FileWriter.Create(image, size))
        using (var handle = File.OpenHandle(raw, FileMode.Open, FileAccess.Write))
        {
            foreach (var (offset, data) in writes)
            {
                await writer.WriteAsync(offset, data, CancellationToken.None);
                RandomAccess.Write(handle, data, offset);
            }

            await writer.FinishAsync(CancellationToken.None);
        }

        return (image, raw);
    }

    /// <summary>The verdict of <c>qemu-img check</c> (its first line; statistics follow).</summary>
    private static async Task<string> CheckAsync(string image) => (await Tool.RunAsync("qemu-img", "check", "-f", "qcow2", image)).Split('\n')[0];

    private static async Task<string> CompareAsync(string image, string raw) =>
        (await Tool.RunAsync("qemu-img", "compare", "-f", "qcow2", "-F", "raw", image, raw)).Trim();

    /// <summary>What <c>qemu-img info</c> reports, without the file's name and size on disk.</summary>
    private static async Task<string> InfoAsync(string image)
    {
        var info = JsonDocument.Parse(await Tool.RunAsync("qemu-img", "info", "--output=json", image)).RootElement;
        return $"{info.GetProperty("format")} {info.GetProperty("virtual-size")} {info.GetProperty("cluster-size")} {info.GetProperty("format-specific")}";
    }
}
