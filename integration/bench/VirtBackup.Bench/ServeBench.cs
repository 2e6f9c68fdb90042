namespace VirtBackup.Bench;

/// <summary>
/// Issue 11, serve: <c>nbdcopy URI null:</c> from <c>virtbackup serve</c> of a full stream of the 4 GiB disk against
/// <c>nbdcopy</c> from <c>qemu-nbd -r</c> serving that stream restored into qcow2 (the same data), interleaved;
/// the same copy from a serve of the 32 GiB disk's stream; and the peak RSS (VmHWM) of both serves over all
/// their copies.
/// </summary>
internal sealed class ServeBench(BenchContext context)
{
    private const double RssLimitMiB = 256;

    public async Task<IReadOnlyList<ResultRow>> RunAsync()
    {
        var options = context.Options;
        var directory = context.StateDirectory("serve");
        var full4 = await context.FullStreamAsync(options.Domain4G);
        var full32 = await context.FullStreamAsync(options.Domain32G);
        var restored = Path.Combine(directory, "restored");
        if (Directory.Exists(restored))
        {
            Directory.Delete(restored, recursive: true);
        }

        await context.Tool.RunAsync(options.VirtBackup, ["restore", "--target-root", restored], stdinFile: full4);
        var image = Directory.GetFiles(restored, "*-vda.qcow2", SearchOption.AllDirectories).Single();

        var ours = new Samples("MiB/s");
        var ours32 = new Samples("MiB/s");
        var peer = new Samples("MiB/s");
        var mib = context.AllocatedBytes / 1048576.0;
        var rss4 = new Samples("MiB");
        var rss32 = new Samples("MiB");
        string compared;
        {
            await using var serve4 = await NbdServerProcess.StartAsync(Path.Combine(directory, "serve4.sock"), options.VirtBackup,
                "serve", "--socket", Path.Combine(directory, "serve4.sock"), full4);
            await using var serve32 = await NbdServerProcess.StartAsync(Path.Combine(directory, "serve32.sock"), options.VirtBackup,
                "serve", "--socket", Path.Combine(directory, "serve32.sock"), full32);
            // Read-only, any number of clients (nbdcopy opens several when the server allows multi-conn), the page cache as usual.
            await using var qemuNbd = await NbdServerProcess.StartAsync(Path.Combine(directory, "qemu-nbd.sock"), "qemu-nbd",
                "-r", "-t", "-e", "0", "-f", "qcow2", "-x", "vda", "-k", Path.Combine(directory, "qemu-nbd.sock"), image);

            async Task Copy(NbdServerProcess server, Samples? into) =>
                into?.Add(mib / (await context.Tool.RunAsync("nbdcopy", [server.Uri("vda"), "null:"])).Seconds);

            // The served disk equals the restored image, byte for byte (once), which also warms both up.
            await Tool.HelperAsync("qemu-img", "compare", "-f", "raw", "-F", "qcow2", serve4.Uri("vda"), image);
            compared = "qemu-img compare of the served vda with the restored qcow2: identical";
            await Copy(serve4, null);
            await Copy(qemuNbd, null);
            await Copy(serve32, null);
            for (var i = 0; i < options.Runs; i++)
            {
                foreach (var first in BenchContext.Alternate(i))
                {
                    await (first ? Copy(serve4, ours) : Copy(qemuNbd, peer));
                }

                await Copy(serve32, ours32);
            }

            rss4.Add(serve4.PeakRssMiB());
            rss32.Add(serve32.PeakRssMiB());
        }

        var rssPass = rss4.Median <= RssLimitMiB && rss32.Median <= RssLimitMiB;
        return
        [
            ResultRow.AtLeast(
                "8", $"nbdcopy to null: of {mib:F0} MiB allocated of a 4 GiB disk, served", "virtbackup serve", ours, "qemu-nbd -r of it restored", peer,
                0.7,
                [
                    "ours: virtbackup serve --socket S FULL_STREAM (zstd, default 64 MiB member cache); peer: qemu-nbd -r -t -e 0 -f qcow2 of that stream restored (virtbackup restore --target-root)",
                    "both servers run for all the copies; nbdcopy NBD_URI null: is timed as a whole process; MiB/s counts the allocated data",
                    compared,
                    $"the same copy from a serve of the 32 GiB disk's stream: {ours32}",
                ]),
            new ResultRow(
                "8m", "  peak RSS of serve (VmHWM over all its copies), 32 GiB disk vs 4 GiB disk", "32 GiB disk", rss32, "4 GiB disk", rss4,
                rss32.Median / rss4.Median, "both <= 256 MiB", rssPass,
                []),
        ];
    }
}
