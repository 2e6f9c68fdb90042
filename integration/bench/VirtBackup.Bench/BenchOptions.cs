namespace VirtBackup.Bench;

/// <summary>What `VirtBackup.Bench run` measures and with what (see integration/bench/README.md).</summary>
internal sealed record BenchOptions(
    string Domain4G,
    string Domain32G,
    string PauseDomain,
    string DataFile,
    string VirtBackup,
    string BenchApp,
    string DomainScript,
    string WorkDirectory,
    string DiskDirectory,
    int Runs,
    IReadOnlySet<string> Only)
{
    /// <summary>Every benchmark, in the order they run (the names BENCH_ONLY takes).</summary>
    public static readonly IReadOnlyList<string> All = ["read", "backup", "pause", "rss", "inc", "restore", "boot", "serve", "consolidate"];

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i + 1 < args.Count; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new BenchException($"expected --option VALUE pairs, got '{args[i]}'");
            }

            values[args[i][2..]] = args[i + 1];
        }

        string Need(string name) => values.GetValueOrDefault(name) ?? throw new BenchException($"--{name} is required");
        var only = values.GetValueOrDefault("only")?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet()
            ?? [.. All];
        return new BenchOptions(
            Need("domain"),
            Need("domain32"),
            Need("pause-domain"),
            Need("data"),
            Need("virtbackup"),
            Environment.ProcessPath ?? throw new BenchException("cannot tell where this program is"),
            Need("domain-script"),
            Need("work"),
            values.GetValueOrDefault("disk-dir") ?? Need("work"),
            int.Parse(values.GetValueOrDefault("runs") ?? "5"),
            only);
    }
}
