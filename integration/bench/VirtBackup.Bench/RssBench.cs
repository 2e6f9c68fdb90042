namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 4 (issue 3): peak RSS of <c>virtbackup backup</c> for the 4 GiB disk (from benchmark 2's runs)
/// and a 32 GiB disk with the same 768 MiB allocated: at most 200 MiB, and the same for both.
/// </summary>
internal sealed class RssBench(BenchContext context)
{
    private const double LimitMiB = 200;

    public async Task<ResultRow> RunAsync()
    {
        var options = context.Options;
        var rss32 = new Samples("MiB");
        var seconds32 = new Samples("s");
        var state = context.StateDirectory("rss-state");
        var rss4 = context.Rss4G ?? await Measure(options.Domain4G, null);
        await Measure(options.Domain32G, null);
        await Measure(options.Domain32G, (rss32, seconds32));
        var ratio = rss32.Median / rss4.Median;
        var pass = rss32.Values.Concat(rss4.Values).All(v => v <= LimitMiB) && ratio <= 1.1;
        return new ResultRow(
            "4", "peak RSS of a full backup, 32 GiB disk (ours) vs 4 GiB disk (peer column)", "32 GiB disk", rss32, "4 GiB disk", rss4,
            ratio, "every run <= 200 MiB, 32G/4G <= 1.10", pass,
            [$"GNU time %M (Maximum resident set size); 32 GiB backups took {seconds32}", $"largest sample: {rss32.Values.Concat(rss4.Values).Max():F0} MiB"]);

        async Task<Samples> Measure(string domain, (Samples Rss, Samples Seconds)? into)
        {
            var rss = into?.Rss ?? new Samples("MiB");
            for (var i = 0; i < (into is null ? 1 : options.Runs); i++)
            {
                var run = await context.Tool.RunAsync(options.VirtBackup, ["backup", "--domain", domain, "--level", "copy", "--state-dir", state]);
                rss.Add(run.MaxRssKiB / 1024.0);
                into?.Seconds.Add(run.Seconds);
            }

            return rss;
        }
    }
}
