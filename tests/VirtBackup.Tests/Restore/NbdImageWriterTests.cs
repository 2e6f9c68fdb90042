using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Restore;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>The restore's writer through a real qemu-nbd: requests over two connections, every byte where it belongs.</summary>
public sealed class NbdImageWriterTests
{
    [Fact(Timeout = 120_000)]
    public async Task Scattered_writes_go_over_two_connections_to_qemu_nbd_and_every_one_lands_at_its_offset()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await Tool.CreateQcow2Async(image, "4G");
        var offsets = Enumerable.Range(0, 40).Select(i => (i * 97L << 20) + (i % 3 * 4096)).ToArray();

        await using (var writer = await NbdImageWriter.OpenAsync(new LocalHostImages(), image, "qcow2", newImage: true, CancellationToken.None))
        {
            Assert.Equal(2, writer.ConnectionCount); // qemu-nbd allows multi-conn
            for (var i = 0; i < offsets.Length; i++)
            {
                await writer.WriteAsync(offsets[i], Enumerable.Repeat((byte)(0x20 + i), 12288).ToArray(), CancellationToken.None);
            }

            await writer.FinishAsync(CancellationToken.None);
            Assert.Equal(new ImageWriteCounts(offsets.Length, offsets.Length * 12288L, 0, 0), writer.Counts);
        }

        await Tool.RunAsync("qemu-img", "check", "-q", image);
        var reads = offsets.SelectMany((offset, i) => new[] { "-c", $"read -P 0x{0x20 + i:x2} {offset} 12k", "-c", $"read -P 0 {offset + 12288} 4k" });
        var output = await Tool.RunAsync("qemu-io", ["-r", "-f", "qcow2", .. reads, image]);
        Assert.DoesNotContain("Pattern verification failed", output, StringComparison.Ordinal);
        Assert.Equal(offsets.Length, output.Split('\n').Count(l => l.StartsWith("read 12288/12288 bytes", StringComparison.Ordinal)));
    }
}
