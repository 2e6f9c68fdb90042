using System.Diagnostics;
using System.Formats.Tar;
using System.Text.Json;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 3 (issue 3): the pause window. Ours is the manifest's <c>pauseWindowMs</c> of a full backup
/// (with a checkpoint); the reference is the bare libvirt calls it cannot do without (suspend,
/// backupBegin with a checkpoint, resume), timed in this process through VirtBackup.Core.Libvirt.Domain.
/// </summary>
internal sealed class PauseBench(BenchContext context)
{
    public async Task<ResultRow> RunAsync()
    {
        var options = context.Options;
        var ours = new Samples("ms");
        var bare = new Samples("ms");
        var oursWall = new Samples("s");
        var state = context.StateDirectory("pause-state");
        using var domain = context.Libvirt.LookupByName(options.PauseDomain);

        async Task Ours()
        {
            var run = await context.Tool.RunAsync(options.VirtBackup, ["backup", "--domain", options.PauseDomain, "--level", "full", "--state-dir", state]);
            ours.Add(PauseWindowMs(run.StdoutHead));
            oursWall.Add(run.Seconds);
        }

        var round = 0;
        async Task Bare() => bare.Add(await BareCallsAsync(domain, $"vbt-bench-bare-{round++}"));

        // A warm-up of each (the bare calls' first run in this process pays for JIT), not counted.
        await Ours();
        await Bare();
        ours = new Samples("ms");
        bare = new Samples("ms");
        oursWall = new Samples("s");
        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var first in BenchContext.Alternate(i))
            {
                await (first ? Ours() : Bare());
            }
        }

        var above = ours.Median - bare.Median;
        return new ResultRow(
            "3", "pause window (suspend to resume), full backup with a checkpoint", "virtbackup pauseWindowMs", ours, "bare libvirt calls", bare,
            ours.Median / bare.Median, "ours <= bare + 10 ms", above <= 10,
            [
                $"ours - bare = {above:F0} ms",
                "bare: virDomainSuspend, virDomainBackupBegin (pull, with checkpoint), virDomainResume, timed in-process after a warm-up",
                $"wall time of our full backups of the 256 MiB pause VM: {oursWall}",
            ]);
    }

    /// <summary>Suspend, begin a job with a checkpoint, resume: the milliseconds in between; then ends the job and deletes the checkpoint.</summary>
    private static async Task<double> BareCallsAsync(Domain domain, string checkpoint)
    {
        var (backup, checkpointXml, runtime) = PullJob.Xml(domain, checkpoint);
        using (runtime)
        {
            var clock = Stopwatch.StartNew();
            domain.Suspend();
            domain.BackupBegin(backup, checkpointXml);
            domain.Resume();
            var ms = clock.Elapsed.TotalMilliseconds;
            domain.AbortJob();
            while (domain.GetJobStats().IsActive)
            {
                await Task.Delay(20);
            }

            domain.CheckpointDelete(checkpoint);
            return ms;
        }
    }

    /// <summary>The manifest is the stream's first member: <c>tar -xOf - virtbackup/manifest.json</c>, in-process.</summary>
    private static double PauseWindowMs(byte[] streamHead)
    {
        using var reader = new TarReader(new MemoryStream(streamHead));
        var entry = reader.GetNextEntry() ?? throw new BenchException("the backup stream is empty");
        if (entry.Name != "virtbackup/manifest.json" || entry.DataStream is null)
        {
            throw new BenchException($"the backup stream starts with '{entry.Name}', not the manifest");
        }

        using var json = JsonDocument.Parse(entry.DataStream);
        return json.RootElement.GetProperty("pauseWindowMs").GetDouble();
    }
}
