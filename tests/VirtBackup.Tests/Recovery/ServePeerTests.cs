using VirtBackup.Core.Stream;
using VirtBackup.Tests.Nbd.Peers;
using VirtBackup.Tests.Restore;

namespace VirtBackup.Tests.Recovery;

/// <summary>
/// <c>virtbackup serve</c> (the real executable) read by the real peers: nbdinfo, nbdcopy, qemu-img, and QEMU's
/// block layer as a backing file, each against <c>virtbackup restore</c> of the same chain.
/// </summary>
public sealed class ServePeerTests
{
    [Fact(Timeout = 120000)]
    public async Task Nbdcopy_and_qemu_img_read_the_served_chain_byte_equal_to_its_restore_and_sigterm_exits_0_removing_the_socket()
    {
        await using var chain = await ServedChain.StartAsync();
        await chain.Server.DisposeAsync(); // the files only: the executable serves them
        using var tree = new RestoredTree();
        foreach (var stream in chain.Streams)
            await ChainFixtures.RestoreAsync(await File.ReadAllBytesAsync(stream), tree.Root, DiskFormat.Qcow2, asName: "served");
        var socket = Path.Combine(chain.Dir, "cli.sock");
        await using var serve = await ServeProcess.StartAsync(["--socket", socket, .. chain.Streams]);
        var copied = Path.Combine(chain.Dir, "vda.raw");
        var converted = Path.Combine(chain.Dir, "vdb.qcow2");

        await Tool.RunAsync("nbdcopy", serve.Uri("vda"), copied);
        await Tool.RunAsync("qemu-img", "convert", "-f", "raw", "-O", "qcow2", serve.Uri("vdb"), converted);
        await Tool.RunAsync("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", tree.Disk("vda", DiskFormat.Qcow2, "served"), serve.Uri("vda"));
        await Tool.RunAsync("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", tree.Disk("vdb", DiskFormat.Qcow2, "served"), converted);
        var exit = await serve.StopAsync();

        Assert.Equal(chain.Expected["vda"], await File.ReadAllBytesAsync(copied));
        Assert.Equal([$"nbd+unix:///vda?socket={socket}", $"nbd+unix:///vdb?socket={socket}"], serve.Uris);
        Assert.Equal(0, exit);
        Assert.False(File.Exists(socket));
        Assert.Contains("stopped serving", serve.StandardError);
    }

    [Fact(Timeout = 120000)]
    public async Task Nbdinfo_map_reports_the_holes_and_zero_extents_of_the_served_disks()
    {
        await using var chain = await ServedChain.StartAsync();

        var vdb = await Tool.RunAsync("nbdinfo", "--map", chain.Uri("vdb"));
        var vda = await Tool.RunAsync("nbdinfo", "--map", chain.Uri("vda"));

        Assert.Equal(
        [
            "0 65536 3 hole,zero",
            "65536 4464 0 data",
            "70000 230000 3 hole,zero",
        ], Lines(vdb));
        Assert.Equal("0 40000 2 zero", Lines(vda)[0]);
        Assert.Contains("500000 65536 2 zero", Lines(vda));
    }

    [Fact(Timeout = 120000)]
    public async Task A_qcow2_overlay_backed_by_the_served_export_reads_like_the_restored_disk()
    {
        await using var chain = await ServedChain.StartAsync();
        var overlay = Path.Combine(chain.Dir, "overlay.qcow2");
        var expected = Path.Combine(chain.Dir, "expected.raw");
        await File.WriteAllBytesAsync(expected, chain.Expected["vda"]);

        await Tool.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", "-b", chain.Uri("vda"), "-F", "raw", overlay);
        await Tool.RunAsync("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 4096 4096", overlay);
        var output = await Tool.RunAsync("qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 4096 4096", overlay);
        await Tool.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x5a 4096 4096", expected);
        await Tool.RunAsync("qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", expected, overlay);

        Assert.DoesNotContain("Pattern verification failed", output);
    }

    private static List<string> Lines(string map) =>
        map.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            .ToList();
}
