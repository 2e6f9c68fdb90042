using System.Diagnostics;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Tests.Nbd.Peers;
using QemuNbdServer = VirtBackup.Core.Hosts.Local.QemuNbdServer;

namespace VirtBackup.Tests.Disks;

/// <summary>
/// The qemu-nbd wrapper the restore writes through: ready means listening, stopping always ends it, and a writable
/// server defers flushes until closing, which keeps the image only when qemu-nbd closed it cleanly.
/// </summary>
public class QemuNbdServerTests
{
    [Fact(Timeout = 120_000)]
    public async Task A_started_server_accepts_a_connection_at_once_and_stops_when_disposed()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await Tool.CreateQcow2Async(image, "1M");

        for (var i = 0; i < 10; i++)
        {
            var server = await QemuNbdServer.StartAsync(image, "qcow2", readOnly: false, bitmap: null, CancellationToken.None);
            await using (var client = await NbdClient.ConnectAsync(NbdUri.Unix(server.SocketPath)))
            {
                Assert.Equal(1 << 20, client.ExportSize);
            }

            await server.DisposeAsync();
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_server_disposed_right_after_it_started_still_exits()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await Tool.CreateQcow2Async(image, "1M");

        for (var i = 0; i < 10; i++)
        {
            var server = await QemuNbdServer.StartAsync(image, "qcow2", readOnly: false, bitmap: null, CancellationToken.None);
            var stopping = Stopwatch.StartNew();
            await server.DisposeAsync();

            // SIGINT, or SIGKILL 5 s later if qemu-nbd lost the SIGINT during its start.
            Assert.InRange(stopping.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(8));
            Assert.False(Directory.Exists(Path.GetDirectoryName(server.SocketPath)));
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_writable_server_defers_flushes_and_closing_leaves_every_write_in_a_clean_image()
    {
        using var dir = new TempDir();
        var image = dir.File("a,b.qcow2"); // a comma, which --image-opts needs written twice
        await Tool.CreateQcow2Async(image, "4G");
        var offsets = Enumerable.Range(0, 8).Select(i => i * (512L << 20) + (i * 65536L)).ToArray(); // one per L2 table

        var server = await QemuNbdServer.StartAsync(image, "qcow2", readOnly: false, bitmap: null, CancellationToken.None);
        try
        {
            var commandLine = await File.ReadAllTextAsync($"/proc/{ServerPid(server)}/cmdline");
            Assert.Contains("cache.no-flush=on", commandLine, StringComparison.Ordinal);
            await using (var client = await NbdClient.ConnectAsync(NbdUri.Unix(server.SocketPath)))
            {
                for (var i = 0; i < offsets.Length; i++)
                {
                    await client.WriteAsync(offsets[i], Enumerable.Repeat((byte)(0x41 + i), 65536).ToArray());
                }
            }

            await server.CloseAsync(CancellationToken.None);
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.False(Directory.Exists(Path.GetDirectoryName(server.SocketPath)));
        await Tool.RunAsync("qemu-img", "check", "-q", image);
        var reads = offsets.SelectMany((offset, i) => new[] { "-c", $"read -P 0x{0x41 + i:x2} {offset} 64k" });
        var output = await Tool.RunAsync("qemu-io", ["-r", "-f", "qcow2", .. reads, image]);
        Assert.DoesNotContain("Pattern verification failed", output, StringComparison.Ordinal);
        Assert.Equal(offsets.Length, output.Split('\n').Count(l => l.StartsWith("read 65536/65536 bytes", StringComparison.Ordinal)));
    }

    [Fact(Timeout = 120_000)]
    public async Task Closing_a_server_that_died_fails_with_its_exit_code_so_the_image_is_not_kept()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await Tool.CreateQcow2Async(image, "1M");
        var server = await QemuNbdServer.StartAsync(image, "qcow2", readOnly: false, bitmap: null, CancellationToken.None);
        try
        {
            var pid = ServerPid(server);
            System.Diagnostics.Process.GetProcessById(pid).Kill();

            var failure = await Assert.ThrowsAsync<ToolException>(() => server.CloseAsync(CancellationToken.None));
            Assert.Contains("exited with 137 while closing", failure.Message, StringComparison.Ordinal);
            Assert.Contains("may be incomplete", failure.Message, StringComparison.Ordinal);
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.False(Directory.Exists(Path.GetDirectoryName(server.SocketPath)));
    }

    [Fact]
    public void Only_a_writable_local_server_defers_flushes_and_a_remote_one_keeps_cache_none()
    {
        var local = QemuNbdServer.Arguments("/i/a,b.qcow2", "qcow2", readOnly: false, bitmap: null, deferFlushes: true);
        Assert.Equal(
            ["--persistent", "--shared=4", "--discard=unmap", "--detect-zeroes=unmap", "--image-opts",
                "driver=qcow2,file.driver=file,file.filename=/i/a,,b.qcow2,file.aio=threads,cache.direct=on,cache.no-flush=on"],
            local);

        var remote = QemuNbdServer.Arguments("/i/a.qcow2", "qcow2", readOnly: false, bitmap: null);
        Assert.Equal(["--persistent", "--shared=4", "--discard=unmap", "--detect-zeroes=unmap", "-f", "qcow2", "--cache=none", "--aio=threads", "/i/a.qcow2"], remote);

        var readOnly = QemuNbdServer.Arguments("/i/a.qcow2", "qcow2", readOnly: true, bitmap: "b", deferFlushes: true);
        Assert.Equal(["--persistent", "--shared=4", "--read-only", "-B", "b", "-f", "qcow2", "--cache=none", "--aio=threads", "/i/a.qcow2"], readOnly);
    }

    private static int ServerPid(QemuNbdServer server) =>
        int.Parse(File.ReadAllText(Path.Combine(Path.GetDirectoryName(server.SocketPath)!, "qemu-nbd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
}
