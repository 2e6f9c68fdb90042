namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 6 (issue 4): a full restore of the 4 GiB disk into qcow2, ours (<c>virtbackup restore</c> of a
/// full stream, a file on stdin, below a scratch target root) against <c>virtnbdrestore</c> restoring the
/// same data from its own backup directory, with and without its lz4 compression (<c>-z</c>), interleaved;
/// plus the restored image's allocation against the source's.
/// </summary>
internal sealed class RestoreBench(BenchContext context)
{
    private const double SizeLimit = 1.05;

    public async Task<IReadOnlyList<ResultRow>> RunAsync()
    {
        var options = context.Options;
        var directory = context.StateDirectory("restore");
        var stream = Path.Combine(directory, "full.vbk");
        var peerBackups = new[] { ("virtnbdrestore", Path.Combine(directory, "peer-plain")), ("virtnbdrestore of -z", Path.Combine(directory, "peer-z")) };
        var log = Path.Combine(directory, "virtnbdrestore.log");

        // Prepared once, not timed: our full stream, and the peer's backup of the same disk without and with -z.
        // The peer's is a copy (-l copy): the same data as a full, without a checkpoint, which virtnbdbackup
        // refuses to make next to ours ("foreign checkpoint").
        await Tool.ToFileAsync(stream, options.VirtBackup, "backup", "--domain", options.Domain4G, "--level", "full",
            "--state-dir", context.StateDirectory("restore-state"));
        await Tool.HelperAsync("virtnbdbackup", "-d", options.Domain4G, "-l", "copy", "-o", peerBackups[0].Item2, "-n");
        await Tool.HelperAsync("virtnbdbackup", "-d", options.Domain4G, "-l", "copy", "-z", "-o", peerBackups[1].Item2, "-n");

        var ours = new Samples("s");
        var oursCpu = new Samples("s");
        var oursSize = new Samples("MiB");
        var peers = peerBackups.Select(p => (Label: p.Item1, Backup: p.Item2, Seconds: new Samples("s"), Size: new Samples("MiB"))).ToList();

        async Task<string> Ours(bool record = true)
        {
            var target = Fresh("ours");
            var run = await context.Tool.RunAsync(options.VirtBackup, ["restore", "--target-root", target], stdinFile: stream);
            var image = Image(target);
            if (record)
            {
                ours.Add(run.Seconds);
                oursCpu.Add(run.CpuSeconds);
                oursSize.Add(await AllocatedAsync(image) / 1048576.0);
            }

            return image;
        }

        async Task<string> Peer(int which, bool record = true)
        {
            var target = Fresh($"peer{which}");
            var peer = peers[which];
            var run = await context.Tool.RunAsync("virtnbdrestore", ["-i", peer.Backup, "-o", target, "-n", "-L", log], directory);
            var image = Image(target);
            if (record)
            {
                peer.Seconds.Add(run.Seconds);
                peer.Size.Add(await AllocatedAsync(image) / 1048576.0);
            }

            return image;
        }

        // A warm-up of each (page cache, first start of each program), not counted; its images are compared
        // with the source once, byte for byte.
        var source = $"/var/lib/libvirt/images/{options.Domain4G}-vda.qcow2";
        var compared = new List<string>();
        foreach (var (label, image) in new[] { ("ours", await Ours(record: false)), ("virtnbdrestore", await Peer(0, record: false)), ("virtnbdrestore -z", await Peer(1, record: false)) })
        {
            await Tool.HelperAsync("qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2", source, image);
            compared.Add(label);
        }

        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var first in BenchContext.Alternate(i))
            {
                if (first)
                {
                    await Ours();
                }
                else
                {
                    await Peer(0);
                    await Peer(1);
                }
            }
        }

        Directory.Delete(Path.Combine(directory, "out"), recursive: true);
        var best = peers.MinBy(p => p.Seconds.Median);
        var other = peers.Single(p => p != best);
        // The source's data now, not the fill's 768 MiB: benchmark 5 (when it ran before) wrote 16 MiB per run into it.
        var allocation = new Samples("MiB");
        allocation.Add(await AllocatedDataAsync(source) / 1048576.0);
        var sizeRatio = oursSize.Median / allocation.Median;
        return
        [
            ResultRow.AtMost(
                "6", "full restore of the 4 GiB disk into qcow2 (wall time)", "virtbackup restore", ours, best.Label, best.Seconds,
                0.5,
                [
                    "ours: virtbackup restore --target-root DIR < FULL_STREAM (zstd, the default); every run into a new empty DIR",
                    $"peer: virtnbdrestore -i BACKUP -o DIR -n of a virtnbdbackup -l copy backup, without and with -z (lz4); the faster is the peer column; {other.Label}: {other.Seconds}",
                    $"restored images equal the source (qemu-img compare, once): {string.Join(", ", compared)}",
                    $"our CPU (user + sys, qemu-img and qemu-nbd included): {oursCpu}; the peer's qemu-nbd forks away, so its CPU is not comparable",
                ]),
            new ResultRow(
                "6s", "  restored image allocation (du) vs the source's allocated data (qemu-img map)", "virtbackup", oursSize, "source", allocation,
                sizeRatio, "<= 1.05", sizeRatio <= SizeLimit,
                [
                    $"peer images: {string.Join("; ", peers.Select(p => $"{p.Label}: {p.Size}"))}",
                    $"source image (du): {await AllocatedAsync(source) / 1048576.0:F1} MiB",
                ]),
        ];

        string Fresh(string name)
        {
            var path = Path.Combine(directory, "out", name);
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }

            Directory.CreateDirectory(path);
            return path;
        }
    }

    /// <summary>The one restored qcow2 image of vda below <paramref name="target"/>.</summary>
    private static string Image(string target) =>
        Directory.GetFiles(target, "*-vda.qcow2", SearchOption.AllDirectories).SingleOrDefault()
        ?? throw new BenchException($"no restored vda image below '{target}'");

    /// <summary>Bytes allocated to a file on disk (<c>du -B1</c>).</summary>
    /// <summary>The bytes of <paramref name="image"/>'s guest-visible data extents (qemu-img map: data true), the image's metadata not counted.</summary>
    private static async Task<long> AllocatedDataAsync(string image)
    {
        using var map = System.Text.Json.JsonDocument.Parse(await Tool.HelperAsync("qemu-img", "map", "-U", "--output=json", "-f", "qcow2", image));
        return map.RootElement.EnumerateArray()
            .Where(e => e.GetProperty("data").GetBoolean())
            .Sum(e => e.GetProperty("length").GetInt64());
    }

    private static async Task<long> AllocatedAsync(string path) =>
        long.Parse((await Tool.HelperAsync("du", "-B1", path)).Split('\t')[0]);
}
