namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 2 (issue 3): a full copy of the 4 GiB disk to a pipe, ours (zstd) against virtnbdbackup
/// (lz4, zip stream on stdout), interleaved; plus the floor: nbdcopy's read (benchmark 1) plus
/// <c>zstd -1 -T2</c> of the allocated data.
/// </summary>
internal sealed class BackupBench(BenchContext context)
{
    public async Task<IReadOnlyList<ResultRow>> RunAsync()
    {
        var options = context.Options;
        var ours = new Samples("s");
        var peer = new Samples("s");
        var zstd = new Samples("s");
        var oursBytes = new Samples("MiB");
        var peerBytes = new Samples("MiB");
        var oursRss = new Samples("MiB");
        var peerRss = new Samples("MiB");
        var state = context.StateDirectory("backup-state");
        var peerDirectory = context.StateDirectory("virtnbdbackup-cwd");
        var zstdBytes = 0L;

        async Task Ours(bool record = true)
        {
            var run = await context.Tool.RunAsync(options.VirtBackup, ["backup", "--domain", options.Domain4G, "--level", "copy", "--state-dir", state]);
            if (!record)
            {
                return;
            }

            ours.Add(run.Seconds);
            oursBytes.Add(run.StdoutBytes / 1048576.0);
            oursRss.Add(run.MaxRssKiB / 1024.0);
        }

        async Task Peer(bool record = true)
        {
            var run = await context.Tool.RunAsync("virtnbdbackup", ["-d", options.Domain4G, "-l", "copy", "-z", "-o", "-", "-n"], peerDirectory);
            if (!record)
            {
                return;
            }

            peer.Add(run.Seconds);
            peerBytes.Add(run.StdoutBytes / 1048576.0);
            peerRss.Add(run.MaxRssKiB / 1024.0);
        }

        async Task Zstd()
        {
            var run = await context.Tool.RunAsync("zstd", ["-1", "-T2", "-c", options.DataFile]);
            zstd.Add(run.Seconds);
            zstdBytes = run.StdoutBytes;
        }

        // A warm-up of each (page cache, first start of each program), not counted.
        await Ours(record: false);
        await Peer(record: false);
        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var first in BenchContext.Alternate(i))
            {
                await (first ? Ours() : Peer());
            }

            await Zstd();
        }

        context.Rss4G = oursRss;
        var floor = new Samples("s");
        var nbdcopy = context.NbdcopySeconds?.Median ?? double.NaN;
        floor.Add(nbdcopy + zstd.Median);
        var sizeRatio = oursBytes.Median / peerBytes.Median;
        return
        [
            ResultRow.AtMost(
                "2", "full backup of the 4 GiB disk to a pipe (wall time)", "virtbackup --level copy", ours, "virtnbdbackup -l copy -z", peer,
                0.5,
                [$"peer flags: virtnbdbackup -d DOMAIN -l copy -z -o - -n (lz4, zip stream on stdout), run in a scratch directory"]),
            new ResultRow(
                "2s", "  stream size of the same runs", "virtbackup", oursBytes, "virtnbdbackup", peerBytes,
                sizeRatio, "< 1.00", sizeRatio < 1.0,
                [$"zstd -1 -T2 of the allocated data alone: {zstdBytes / 1048576.0:F0} MiB"]),
            new ResultRow(
                "2f", "  ours against the floor (nbdcopy null: + zstd -1 -T2)", "virtbackup --level copy", ours, "floor", floor,
                ours.Median / floor.Median, "info", null,
                [$"floor = nbdcopy median {Samples.Format(nbdcopy)} s (benchmark 1) + zstd -1 -T2 of the {context.AllocatedBytes / 1048576} MiB data file median {Samples.Format(zstd.Median)} s ({zstd})",
                 $"peak RSS: ours {oursRss}, virtnbdbackup {peerRss}"]),
        ];
    }
}
