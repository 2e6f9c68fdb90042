using System.Diagnostics;
using VirtBackup.Tests.Nbd.Peers;
using QemuNbdServer = VirtBackup.Core.Hosts.Local.QemuNbdServer;

namespace VirtBackup.Tests.Disks;

/// <summary>The qemu-nbd wrapper the restore writes through: ready means listening, stopping always ends it.</summary>
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
}
