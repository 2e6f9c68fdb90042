using VirtBackup.Tests.Nbd.Peers;

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
        {
            await ChainFixtures.RestoreAsync(await File.ReadAllBytesAsync(stream), tree.Root, DiskFormat.Qcow2, asName: "served");
        }

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

    [Fact(Timeout = 120000)]
    public async Task Serve_on_tcp_port_0_prints_the_real_port_and_sigint_exits_0()
    {
        await using var chain = await ServedChain.StartAsync();
        await using var serve = await ServeProcess.StartAsync(["--listen", "127.0.0.1:0", .. chain.Streams]);
        await using (var client = await VirtBackup.Core.Nbd.NbdClient.ConnectAsync(VirtBackup.Core.Nbd.NbdUri.Parse(serve.Uri("vdb"))))
        {
            var buffer = new byte[client.ExportSize];
            await client.ReadAsync(0, buffer);
            Assert.Equal(chain.Expected["vdb"], buffer);
        }

        Assert.Matches(@"^nbd://127\.0\.0\.1:[1-9][0-9]*/vda$", serve.Uris[0]);
        Assert.Equal(0, await serve.StopAsync(signal: 2));
    }

    [Theory(Timeout = 60000)]
    [InlineData("--socket", "/tmp/x.sock")]
    [InlineData("--socket", "/tmp/x.sock", "--listen", "127.0.0.1:0", "a.tar")]
    [InlineData("--listen", "localhost", "a.tar")]
    [InlineData("a.tar")]
    public async Task Serve_without_streams_or_without_exactly_one_valid_endpoint_exits_2(params string[] args)
    {
        var result = await VirtBackup.Testing.VirtBackupCli.RunAsync(["serve", .. args]);

        Assert.Equal(2, result.ExitCode);
        Assert.Matches("give the chain's stream files|give exactly one of --socket PATH or --listen ADDR:PORT|--listen takes ADDR:PORT", result.StandardError);
    }

    [Fact(Timeout = 60000)]
    public async Task Serve_of_a_chain_with_a_gap_exits_4_and_leaves_no_socket()
    {
        await using var chain = await ServedChain.StartAsync();
        var socket = Path.Combine(chain.Dir, "gap.sock");

        var result = await VirtBackup.Testing.VirtBackupCli.RunAsync(["serve", "--socket", socket, chain.Streams[0], chain.Streams[2]]);

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("it continues from checkpoint", result.StandardError);
        Assert.False(File.Exists(socket));
    }

    private static List<string> Lines(string map) =>
        map.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            .ToList();
}
