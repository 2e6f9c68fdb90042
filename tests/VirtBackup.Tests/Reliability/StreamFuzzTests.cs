using System.Diagnostics;

namespace VirtBackup.Tests.Reliability;

/// <summary>
/// restore, verify and list fed mutated streams (<see cref="StreamMutator"/>): each one is refused with a
/// VirtBackup error (a stream error names the member), or accepted only if verify accepts it too and then restores
/// exactly like the valid stream; nothing hangs, nothing is written outside the target, no broken stream leaves a
/// target that looks complete (an empty target stays empty, a previous restore stays as it was), and memory stays
/// bounded (peak RSS of the real executable). CI runs <see cref="CiCount"/> in process and a sample through the
/// CLI; <c>VIRTBACKUP_LONG_TESTS=1</c> runs <see cref="LongCount"/> and a larger sample (docs/RELIABILITY.md).
/// </summary>
public sealed class StreamFuzzTests(ITestOutputHelper output)
{
    private const int CiCount = 300;
    private const int LongCount = 1500;
    private const long MaxPeakRssBytes = 300L << 20;
    private static readonly TimeSpan PerInput = TimeSpan.FromSeconds(30);

    private static bool Long => Environment.GetEnvironmentVariable("VIRTBACKUP_LONG_TESTS") == "1";

    [Fact(Timeout = 900_000)]
    public async Task Mutated_streams_in_process_are_refused_cleanly_by_verify_list_and_restore_and_leave_no_trace()
    {
        var valid = await ChainFixtures.BuildAsync(ChainFixtures.Small());
        using var previous = new RestoredTree();
        await previous.RestoreAsync(valid);
        var count = Long ? LongCount : CiCount;
        var mutants = new StreamMutator(valid, 20261127).Generate(count).ToList();
        var elapsed = Stopwatch.StartNew();
        var failures = new List<string>();
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < mutants.Count; i++)
        {
            var outcome = await CheckInProcessAsync(mutants[i], previous, overPrevious: i % 2 == 1, failures);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (outcome != "refused")
            {
                output.WriteLine($"accepted: {mutants[i].Kind}: {mutants[i].Description}");
            }
        }

        output.WriteLine($"{mutants.Count} mutated streams × verify, list, restore in {elapsed.Elapsed.TotalSeconds:F1} s: "
            + string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Value} {o.Key}")));
        foreach (var kind in mutants.GroupBy(m => m.Kind))
        {
            output.WriteLine($"  {kind.Count(),4} {kind.Key}");
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {mutants.Count}:\n{string.Join("\n", failures.Take(40))}");
        Assert.False(File.Exists("/etc/cron.d/evil"));
    }

    [Fact(Timeout = 900_000)]
    public async Task Mutated_streams_and_tar_bombs_through_the_cli_exit_non_zero_with_the_member_named_in_bounded_memory()
    {
        var valid = await ChainFixtures.BuildAsync(ChainFixtures.Small());
        var sample = new StreamMutator(valid, 4242).Generate(Long ? 150 : 30).ToList();
        sample.AddRange(await TarBombsAsync());
        var elapsed = Stopwatch.StartNew();
        var failures = new List<string>();
        long peak = 0;
        foreach (var mutant in sample)
        {
            var verify = await PeakRssRun.RunAsync(["verify"], mutant.Stream);
            var list = await PeakRssRun.RunAsync(["list"], mutant.Stream);
            using var tree = new RestoredTree();
            var restore = await PeakRssRun.RunAsync(["restore", "--target-root", tree.Root, "--format", "raw"], mutant.Stream);
            peak = Math.Max(peak, new[] { verify.PeakRss, list.PeakRss, restore.PeakRss }.Max());
            var where = $"{mutant.Kind}: {mutant.Description}";
            foreach (var (verb, run) in new[] { ("verify", verify), ("list", list), ("restore", restore) })
            {
                if (run.PeakRss > MaxPeakRssBytes)
                {
                    failures.Add($"{where}: {verb} peaked at {run.PeakRss >> 20} MiB");
                }

                if (run.ExitCode is 1 or > 8 or < 0 || run.StandardError.Contains("failed unexpectedly", StringComparison.Ordinal))
                {
                    failures.Add($"{where}: {verb} crashed with exit {run.ExitCode}: {run.StandardError}");
                }
            }

            if (verify.ExitCode == 0)
            {
                if (list.ExitCode != 0 || restore.ExitCode != 0)
                {
                    failures.Add($"{where}: verify accepts it, but list exits {list.ExitCode} and restore {restore.ExitCode}: {restore.StandardError}");
                }

                continue;
            }

            foreach (var (verb, run) in new[] { ("verify", verify), ("list", list), ("restore", restore) })
            {
                if (run.ExitCode is not (6 or 4))
                {
                    failures.Add($"{where}: {verb} exits {run.ExitCode} (verify {verify.ExitCode}): {run.StandardError}");
                }
                else if (run.ExitCode == 6 && !run.StandardError.Contains("Invalid backup stream: member '", StringComparison.Ordinal))
                {
                    failures.Add($"{where}: {verb} does not name the member: {run.StandardError}");
                }
            }

            if (restore.StandardOutput.Length > 0 || verify.StandardOutput.Length > 0)
            {
                failures.Add($"{where}: restore or verify wrote to stdout");
            }

            if (tree.Files().Count > 0 || !Directory.EnumerateFileSystemEntries(tree.Parent).SequenceEqual([tree.Root]))
            {
                failures.Add($"{where}: the refused restore left {string.Join(", ", tree.Files())}");
            }
        }

        output.WriteLine($"{sample.Count} inputs × verify, list, restore through the CLI in {elapsed.Elapsed.TotalSeconds:F1} s; peak RSS {peak >> 20} MiB");
        Assert.True(failures.Count == 0, $"{failures.Count} problems:\n{string.Join("\n", failures.Take(40))}");
    }

    /// <summary>
    /// 10000 tiny data members that pass every check as they come (each of its own 512-byte extent): valid as a
    /// whole, cut before the trailer, and with the last data member broken.
    /// </summary>
    private static async Task<IReadOnlyList<Mutant>> TarBombsAsync()
    {
        const int members = 10_000;
        var extents = Enumerable.Range(0, members).Select(i => new DiskExtent(i * 2048L, 512, false)).ToArray();
        var spec = ChainFixtures.Small() with { Disks = [StreamFixtures.Disk("vda", members * 2048L, 3, extents)], Compression = Compression.None };
        var bomb = await ChainFixtures.BuildAsync(spec);
        var records = TarSurgery.Records(bomb);
        var last = records[^2];
        var broken = (byte[])bomb.Clone();
        broken[last.ContentOffset + 100] ^= 0x10;
        return
        [
            new("tar bomb", $"{members} data members of 512 bytes, complete", bomb),
            new("tar bomb", $"{members} data members of 512 bytes, cut before the trailer", bomb[..(int)records[^1].HeaderOffset]),
            new("tar bomb", $"{members} data members of 512 bytes, the last one corrupt", broken),
        ];
    }

    /// <summary>Runs verify, list and restore on one input in process; returns how it ended ("refused", "accepted").</summary>
    private static async Task<string> CheckInProcessAsync(Mutant mutant, RestoredTree previous, bool overPrevious, List<string> failures)
    {
        var where = $"{mutant.Kind}: {mutant.Description}";
        var verify = await OutcomeAsync(() => new BackupStreamReader(Pipe(mutant.Stream)).VerifyAsync());
        var list = await OutcomeAsync(() => StreamListing.ReadAsync(Pipe(mutant.Stream), _ => { }, CancellationToken.None));
        using var tree = new RestoredTree();
        if (overPrevious)
        {
            tree.CopyFrom(previous);
        }

        var before = tree.Snapshot();
        var restore = await OutcomeAsync(() => tree.RestoreAsync(mutant.Stream, force: overPrevious));
        foreach (var (verb, outcome) in new[] { ("verify", verify), ("list", list), ("restore", restore) })
        {
            if (outcome.Problem is { } problem)
            {
                failures.Add($"{where}: {verb} {problem}");
            }
        }

        if (!Directory.EnumerateFileSystemEntries(tree.Parent).SequenceEqual([tree.Root]))
        {
            failures.Add($"{where}: wrote next to the target root");
        }

        if (verify.Accepted)
        {
            if (!list.Accepted || !restore.Accepted)
            {
                failures.Add($"{where}: verify accepts it, list {(list.Accepted ? "accepts" : "refuses")}, restore {(restore.Accepted ? "accepts" : "refuses")} it");
            }
            else if (!tree.Snapshot().Where(e => !e.Key.Contains(".virtbackup", StringComparison.Ordinal)).Select(e => e.Value)
                         .SequenceEqual(previous.Snapshot().Where(e => !e.Key.Contains(".virtbackup", StringComparison.Ordinal)).Select(e => e.Value)))
            {
                failures.Add($"{where}: accepted, but restores differently from the valid stream");
            }

            return "accepted (equal to the valid stream)";
        }

        if (restore.Accepted || list.Accepted)
        {
            failures.Add($"{where}: verify refuses it ({verify.Message}), but {(restore.Accepted ? "restore" : "list")} accepts it");
        }

        if (overPrevious && !before.SequenceEqual(tree.Snapshot()))
        {
            failures.Add($"{where}: changed the previous restore: {string.Join(", ", tree.Snapshot().Except(before).Select(e => e.Key))}");
        }

        if (!overPrevious && tree.Files().Count > 0)
        {
            failures.Add($"{where}: left files in an empty target: {string.Join(", ", tree.Files())}");
        }

        return "refused";
    }

    private sealed record Outcome(bool Accepted, string? Message, string? Problem);

    private static async Task<Outcome> OutcomeAsync(Func<Task> run)
    {
        try
        {
            await run().WaitAsync(PerInput);
            return new(true, null, null);
        }
        catch (TimeoutException)
        {
            return new(false, null, $"did not finish within {PerInput.TotalSeconds} s (hang)");
        }
        catch (StreamFormatException e)
        {
            var named = !string.IsNullOrEmpty(e.Member) && e.Message.Contains($"member '{e.Member}'", StringComparison.Ordinal);
            return new(false, e.Message, named ? null : $"does not name the member: {e.Message}");
        }
        catch (VirtBackupException e) when (e.Category is ErrorCategory.Refused or ErrorCategory.InvalidStream)
        {
            return new(false, e.Message, null);
        }
        catch (Exception e)
        {
            return new(false, e.Message, $"threw {e.GetType().Name}: {e.Message}");
        }
    }

    private static UnseekableStream Pipe(byte[] stream) => new(new MemoryStream(stream, writable: false));
}
