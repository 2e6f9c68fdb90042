namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 5 (issue 3): after a full backup of the 4 GiB disk and a 16 MiB guest-like write
/// (domain.sh write), an incremental backup: at most 10% of the full backup's wall time. Each run is
/// full, write, inc, so every incremental follows its own full.
/// </summary>
internal sealed class IncrementalBench(BenchContext context)
{
    public async Task<ResultRow> RunAsync()
    {
        var options = context.Options;
        var full = new Samples("s");
        var inc = new Samples("s");
        var incBytes = new Samples("MiB");
        var state = context.StateDirectory("inc-state");

        async Task<ToolRun> Backup(string level) =>
            await context.Tool.RunAsync(options.VirtBackup, ["backup", "--domain", options.Domain4G, "--level", level, "--state-dir", state]);

        for (var i = -1; i < options.Runs; i++)
        {
            var fullRun = await Backup("full");
            var offset = $"{1024 + (i + 1) * 96}M";
            await Tool.HelperAsync("bash", options.DomainScript, "write", options.Domain4G, "vda", offset, "16M", "0x5a");
            var incRun = await Backup("inc");
            if (i >= 0)
            {
                full.Add(fullRun.Seconds);
                inc.Add(incRun.Seconds);
                incBytes.Add(incRun.StdoutBytes / 1048576.0);
            }
        }

        return ResultRow.AtMost(
            "5", "incremental after a 16 MiB write vs the full before it (wall time)", "virtbackup --level inc", inc, "virtbackup --level full", full,
            0.1,
            [$"incremental stream sizes: {incBytes} (16 MiB of 0x5a compresses to almost nothing)"]);
    }
}
