using System.Globalization;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 1 (issue 2): read every allocated extent of a libvirt pull-mode export with our NBD client
/// (the nbd-read verb, its own process: the backup's read path, DiskStreamer) and with <c>nbdcopy URI null:</c>, interleaved.
/// </summary>
internal sealed class ReadBench(BenchContext context)
{
    public async Task<ResultRow> RunAsync()
    {
        var options = context.Options;
        var ours = new Samples("MiB/s");
        var peer = new Samples("MiB/s");
        var oursInProcess = new Samples("MiB/s");
        var connections = "?";
        var peerSeconds = new Samples("s");
        using var domain = context.Libvirt.LookupByName(options.Domain4G);
        await using var job = PullJob.Begin(domain);
        var uri = job.Uri.ToString();
        var allocated = context.AllocatedBytes;
        var mib = allocated / 1048576.0;

        async Task<double> Ours()
        {
            var run = await context.Tool.RunAsync(options.BenchApp, ["nbd-read", uri]);
            var fields = System.Text.Encoding.ASCII.GetString(run.StdoutHead).Split(' ');
            if (long.Parse(fields[0], CultureInfo.InvariantCulture) != allocated)
            {
                throw new BenchException($"nbd-read read {fields[0]} bytes, but {allocated} are allocated");
            }

            oursInProcess.Add(mib / double.Parse(fields[1], CultureInfo.InvariantCulture));
            connections = fields[2].Trim();
            return run.Seconds;
        }

        async Task<double> Peer() => (await context.Tool.RunAsync("nbdcopy", [uri, "null:"])).Seconds;

        // A warm-up of each (page cache, first start of each program), not counted.
        await Ours();
        await Peer();
        oursInProcess = new Samples("MiB/s");
        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var first in BenchContext.Alternate(i))
            {
                if (first)
                {
                    ours.Add(mib / await Ours());
                }
                else
                {
                    var seconds = await Peer();
                    peerSeconds.Add(seconds);
                    peer.Add(mib / seconds);
                }
            }
        }

        context.NbdcopySeconds = peerSeconds;
        return ResultRow.AtLeast(
            "1", $"read {mib:F0} MiB allocated of a 4 GiB disk over a pull-mode export", "virtbackup DiskStreamer", ours, "nbdcopy", peer,
            0.8,
            [
                "both timed as whole processes (start to exit); our process includes .NET start-up",
                $"ours is the backup's read path (DiskStreamer.OpenAsync + ReadDataAsync: NbdReaderPool, {connections} connections, {NbdClient.DefaultReadChunkSize / 1024} KiB chunks, {NbdReaderPool.DefaultWindowBytes / 1048576} MiB window)",
                $"ours inside the process (connect to last byte): {Samples.Format(oursInProcess.Median)} MiB/s median ({oursInProcess})",
                $"nbdcopy seconds: {peerSeconds}",
            ]);
    }
}
