namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// A column of the fault matrix for a fault the run lives through long enough to clean up after itself. On one lab
/// VM, for every phase: a guest change, a backup held at that phase, the fault; then the run must exit with the
/// expected code and say why on stderr, leave nothing behind, and the next backup must restore byte-equal.
/// </summary>
internal sealed record CleanFailureColumn(string Fault, int ExitCode, string Says, TimeSpan ExitWithin)
{
    /// <summary>Whether the held run is let go on (SIGCONT) after the fault, or must end on the fault alone.</summary>
    public bool ContinueAfterFault { get; init; } = true;

    /// <summary>How the row tells the run's end, from its outcome and the milliseconds it took to end after the fault.</summary>
    public Func<CliOutcome, long, string>? Ending { get; init; }

    public async Task RunAsync(ITestOutputHelper output, Func<CliProcess, Task> strike)
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix(Fault, output);
        foreach (var phase in BackupPhases.All)
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                using var backup = await lab.StartAtAsync(phase);
                var at = lab.Describe();
                await strike(backup);
                var ended = backup.EndedAfterAsync();
                if (ContinueAfterFault)
                {
                    backup.Continue();
                }

                var outcome = await backup.WaitForExitAsync(ExitWithin);

                Assert.True(outcome.ExitCode == ExitCode, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                Assert.Contains(Says, outcome.StandardError);
                lab.AssertClean();
                var (level, _) = await lab.NextBackupRestoresByteEqualAsync();
                var ending = Ending?.Invoke(outcome, await ended) ?? $"exit {ExitCode} in {await ended} ms,";
                return $"{at} → {ending} clean; next {level} restores equal";
            });
        }

        matrix.Complete();
    }
}
