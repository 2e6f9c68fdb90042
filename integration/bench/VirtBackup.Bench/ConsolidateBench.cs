namespace VirtBackup.Bench;

/// <summary>
/// Issue 12, consolidate: <c>virtbackup consolidate</c> of a full and three incrementals of the 4 GiB disk (a 16 MiB
/// write before each incremental), to a pipe, against a real <c>--level full</c> backup of the same VM to a pipe,
/// interleaved; and the peak RSS of the same consolidate for the 32 GiB disk's chain against the 4 GiB one's.
/// The chains are taken once, untimed.
/// </summary>
internal sealed class ConsolidateBench(BenchContext context)
{
    private const int Incrementals = 3;

    public async Task<IReadOnlyList<ResultRow>> RunAsync()
    {
        var options = context.Options;
        var chain4 = await ChainAsync(options.Domain4G);
        var chain32 = await ChainAsync(options.Domain32G);
        var fullState = context.StateDirectory("consolidate-full-state");

        var ours = new Samples("s");
        var ours32 = new Samples("s");
        var peer = new Samples("s");
        var rss4 = new Samples("MiB");
        var rss32 = new Samples("MiB");
        var oursBytes = new Samples("MiB");
        var peerBytes = new Samples("MiB");

        async Task Consolidate(IReadOnlyList<string> chain, Samples? seconds, Samples? rss)
        {
            var run = await context.Tool.RunAsync(options.VirtBackup, ["consolidate", .. chain]);
            seconds?.Add(run.Seconds);
            rss?.Add(run.MaxRssKiB / 1024.0);
            if (seconds == ours)
            {
                oursBytes.Add(run.StdoutBytes / 1048576.0);
            }
        }

        async Task Full(bool record = true)
        {
            var run = await context.Tool.RunAsync(options.VirtBackup, ["backup", "--domain", options.Domain4G, "--level", "full", "--state-dir", fullState]);
            if (record)
            {
                peer.Add(run.Seconds);
                peerBytes.Add(run.StdoutBytes / 1048576.0);
            }
        }

        // A warm-up of each (page cache, first start of each program), not counted.
        await Consolidate(chain4, null, null);
        await Consolidate(chain32, null, null);
        await Full(record: false);
        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var first in BenchContext.Alternate(i))
            {
                await (first ? Consolidate(chain4, ours, rss4) : Full());
            }

            await Consolidate(chain32, ours32, rss32);
        }

        var rssRatio = rss32.Median / rss4.Median;
        return
        [
            ResultRow.AtMost(
                "9", "synthetic full of full + 3 incrementals of the 4 GiB disk vs a real full backup (wall time, to a pipe)", "virtbackup consolidate", ours, "virtbackup --level full", peer,
                0.5,
                [
                    "ours: virtbackup consolidate FULL INC1 INC2 INC3 (stream files, zstd; domain.sh write of 16 MiB before each incremental)",
                    $"stream sizes: synthetic full {oursBytes}; real full {peerBytes}",
                    $"consolidate of the 32 GiB disk's chain took {ours32}",
                ]),
            new ResultRow(
                "9m", "  peak RSS of consolidate, 32 GiB disk vs 4 GiB disk", "32 GiB disk", rss32, "4 GiB disk", rss4,
                rssRatio, "32G/4G <= 1.10", rssRatio <= 1.1,
                [$"GNU time %M (Maximum resident set size); largest sample: {rss32.Values.Concat(rss4.Values).Max():F0} MiB"]),
        ];
    }

    /// <summary>A full and three incrementals of <paramref name="domain"/>, each after a 16 MiB guest-like write, as stream files.</summary>
    private async Task<IReadOnlyList<string>> ChainAsync(string domain)
    {
        var options = context.Options;
        var directory = context.StateDirectory($"consolidate-{domain}");
        var state = context.StateDirectory($"consolidate-state-{domain}");
        var chain = new List<string>();
        for (var i = 0; i <= Incrementals; i++)
        {
            if (i > 0)
            {
                await Tool.HelperAsync("bash", options.DomainScript, "write", domain, "vda", $"{2048 + i * 96}M", "16M", $"0x{0x30 + i:x2}");
            }

            var stream = Path.Combine(directory, i == 0 ? "full.vbk" : $"inc{i}.vbk");
            await Tool.ToFileAsync(stream, options.VirtBackup, "backup", "--domain", domain, "--level", i == 0 ? "full" : "inc", "--state-dir", state);
            chain.Add(stream);
        }

        return chain;
    }
}
