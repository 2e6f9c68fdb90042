namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// The chain-aware prune wrappers (virtbackup-restic-forget, virtbackup-borg-prune) on real restic 0.14 and
/// borg 1.2 repositories holding tiny fake streams stored with chosen levels and times, as the backup
/// wrappers tag or name them: the host's own policy decides what it keeps, the wrapper keeps every backup a
/// kept one depends on, and what remains restores as whole chains. No VM (ChainRetentionVmTests restores real ones).
/// </summary>
public sealed class ChainRetentionTests : IDisposable
{
    private const int Timeout = 120_000;
    private const string Domain = "vbt-retention";
    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Theory(Timeout = Timeout)]
    [InlineData("restic")]
    [InlineData("borg")]
    public async Task Keep_last_2_keeps_the_two_newest_with_the_full_they_need_forgets_the_older_chain_and_its_copy_and_leaves_a_broken_chain_alone(string name)
    {
        var host = await CreateAsync(name);
        var b = await AddTwoChainsAsync(host);

        var prune = await host.PruneAsync(Domain, "--keep-last", "2");

        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Equal(
            [
                b[0].PlanLine("left alone: no full before it (chain already broken)"),
                b[1].PlanLine("forgotten"), b[2].PlanLine("forgotten"), b[3].PlanLine("forgotten"), b[4].PlanLine("forgotten"),
                b[5].PlanLine($"needed by {b[7].Label}"),
                b[6].PlanLine("kept by policy"), b[7].PlanLine("kept by policy"),
            ],
            Lines(prune.StandardOutput));
        Assert.Contains("has incrementals without a full before them (their chain is broken already): left alone", prune.StandardError);
        Assert.Equal([b[0], b[5], b[6], b[7]], await host.ListAsync(Domain));
        Assert.Equal([b[5].Id, b[6].Id], await ChainAsync(host, b[6]));
        Assert.Equal([b[5].Id, b[6].Id, b[7].Id], await ChainAsync(host, b[7]));
        var broken = await host.RestoreAsync(Domain, b[0].Id, "--list");
        Assert.True(broken.ExitCode == 22, broken.ToString());
    }

    [Theory(Timeout = Timeout)]
    [InlineData("restic")]
    [InlineData("borg")]
    public async Task Keep_daily_3_keeps_each_days_last_backup_with_its_chain_ordered_by_backup_time_not_by_when_it_was_stored(string name)
    {
        var host = await CreateAsync(name);
        (string Level, DateTimeOffset Time)[] backups =
        [
            ("full", Day(1, 8)), ("inc", Day(1, 20)), ("inc", Day(2, 8)), ("inc", Day(2, 20)), ("inc", Day(3, 7)),
            ("copy", Day(3, 8)), ("full", Day(3, 9)), ("inc", Day(3, 20)), ("inc", Day(4, 8)), ("inc", Day(4, 9)),
        ];
        foreach (var i in new[] { 6, 0, 9, 2, 5, 1, 8, 4, 7, 3 })
        {
            await host.AddFakeAsync(Domain, backups[i].Level, backups[i].Time, $"stream {i}");
        }

        var b = await host.ListAsync(Domain);
        Assert.Equal(backups.Select(x => x.Level), b.Select(x => x.Level));

        var prune = await host.PruneAsync(Domain, "--keep-daily", "3");

        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Equal(
            [
                b[0].PlanLine($"needed by {b[3].Label}"), b[1].PlanLine($"needed by {b[3].Label}"),
                b[2].PlanLine($"needed by {b[3].Label}"), b[3].PlanLine("kept by policy"),
                b[4].PlanLine("forgotten"), b[5].PlanLine("forgotten"),
                b[6].PlanLine($"needed by {b[9].Label}"), b[7].PlanLine("kept by policy"),
                b[8].PlanLine($"needed by {b[9].Label}"), b[9].PlanLine("kept by policy"),
            ],
            Lines(prune.StandardOutput));
        Assert.Equal([b[0], b[1], b[2], b[3], b[6], b[7], b[8], b[9]], await host.ListAsync(Domain));
        Assert.Equal([b[0].Id, b[1].Id, b[2].Id, b[3].Id], await ChainAsync(host, b[3]));
        Assert.Equal([b[6].Id, b[7].Id], await ChainAsync(host, b[7]));
        Assert.Equal([b[6].Id, b[7].Id, b[8].Id, b[9].Id], await ChainAsync(host, b[9]));
    }

    [Theory(Timeout = Timeout)]
    [InlineData("restic")]
    [InlineData("borg")]
    public async Task A_copy_kept_by_the_policy_needs_nothing_a_dry_run_changes_nothing_and_no_policy_is_refused(string name)
    {
        var host = await CreateAsync(name);
        await AddTwoChainsAsync(host);
        await host.AddFakeAsync(Domain, "copy", Day(2, 13), "a copy");
        var b = await host.ListAsync(Domain);

        var noPolicy = await host.PruneAsync(Domain);
        var unknown = await host.PruneAsync(Domain, "--keep-last", "1", "--tag", "x");
        var dryRun = await host.PruneAsync(Domain, "--keep-last", "1", "--dry-run");
        var afterDryRun = await host.ListAsync(Domain);
        var prune = await host.PruneAsync(Domain, "--keep-last", "1", host.FreeSpaceOption);

        Assert.True(noPolicy.ExitCode == 2, noPolicy.ToString());
        Assert.Contains("give a policy (--keep-last N, --keep-daily N, ...): without one nothing would be kept", noPolicy.StandardError);
        Assert.True(unknown.ExitCode == 2, unknown.ToString());
        Assert.Contains("unknown argument '--tag'", unknown.StandardError);
        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        Assert.Matches(@": 2 (snapshot|archive)\(s\) kept, 7 to (forget|delete) \(dry run: nothing changed\)\n", dryRun.StandardError);
        Assert.Equal(b, afterDryRun);
        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Equal(dryRun.StandardOutput, prune.StandardOutput);
        Assert.Equal(
            [b[0].PlanLine("left alone: no full before it (chain already broken)"), .. b.Skip(1).SkipLast(1).Select(x => x.PlanLine("forgotten")), b[8].PlanLine("kept by policy")],
            Lines(prune.StandardOutput));
        Assert.Equal([b[0], b[8]], await host.ListAsync(Domain));
        Assert.Equal([b[8].Id], await ChainAsync(host, b[8]));
    }

    [Fact(Timeout = Timeout)]
    public async Task Restic_snapshots_taken_under_different_utc_offsets_are_ordered_by_their_instant_not_by_their_time_text()
    {
        var restic = new ResticRepository(_work.Path, new HostVirtBackup(_work.Path));
        await restic.InitAsync();
        // The full at 10:00+02:00 (08:00 UTC) precedes the inc at 09:00Z, though its text sorts after it.
        foreach (var (level, zone, time) in new[] { ("full", "Etc/GMT-2", "2026-01-01 10:00:00"), ("inc", "UTC", "2026-01-01 09:00:00") })
        {
            await HostTools.RunCheckedAsync("restic", ["backup", "--stdin", "--stdin-filename", $"{Domain}.tar", "--tag", "virtbackup",
                "--tag", $"domain={Domain}", "--tag", $"level={level}", "--time", time],
                new Dictionary<string, string?>(restic.Environment()) { ["TZ"] = zone }, level);
        }

        var host = new ResticChainHost(restic);
        var b = await host.ListAsync(Domain);
        var forget = await host.PruneAsync(Domain, "--keep-last", "1");

        Assert.Equal(["2026-01-01T10:00:00+02:00", "2026-01-01T09:00:00Z"], b.Select(x => x.Time));
        Assert.True(forget.ExitCode == 0, forget.ToString());
        Assert.Equal([b[0].PlanLine($"needed by {b[1].Label}"), b[1].PlanLine("kept by policy")], Lines(forget.StandardOutput));
        Assert.Equal([b[0].Id, b[1].Id], await ChainAsync(host, b[1]));
    }

    private async Task<IChainHost> CreateAsync(string name)
    {
        var host = ChainHosts.Create(name, _work.Path, new HostVirtBackup(_work.Path));
        await host.InitAsync();
        return host;
    }

    /// <summary>An incremental without a full, then two chains (full, inc, copy, inc; full, inc, inc) over two days.</summary>
    private static async Task<IReadOnlyList<StoredBackup>> AddTwoChainsAsync(IChainHost host)
    {
        (string Level, DateTimeOffset Time)[] backups =
        [
            ("inc", Day(1, 9)), ("full", Day(1, 10)), ("inc", Day(1, 11)), ("copy", Day(1, 11, 30)), ("inc", Day(1, 12)),
            ("full", Day(2, 10)), ("inc", Day(2, 11)), ("inc", Day(2, 12)),
        ];
        foreach (var (level, time) in backups)
        {
            await host.AddFakeAsync(Domain, level, time, $"{level} {time:O}");
        }

        var stored = await host.ListAsync(Domain);
        Assert.Equal(backups.Select(x => x.Level), stored.Select(x => x.Level));
        return stored;
    }

    /// <summary>The ids the restore wrapper would restore, in order, for the state as of <paramref name="backup"/>.</summary>
    private static async Task<string[]> ChainAsync(IChainHost host, StoredBackup backup)
    {
        var list = await host.RestoreAsync(Domain, backup.Id, "--list");
        Assert.True(list.ExitCode == 0, list.ToString());
        return [.. Lines(list.StandardOutput).Select(line => line.Split(' ')[0])];
    }

    private static DateTimeOffset Day(int day, int hour, int minute = 0) => new(2026, 1, day, hour, minute, 0, TimeSpan.Zero);

    private static string[] Lines(string text) => text.TrimEnd('\n').Split('\n');
}
