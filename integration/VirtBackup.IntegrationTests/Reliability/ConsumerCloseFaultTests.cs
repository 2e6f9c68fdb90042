namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>The "consumer closes stdout" column of the fault matrix: EPIPE on the next write, exit 7, cleanup done.</summary>
[Collection(LabCollection.Name)]
public sealed class ConsumerCloseFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public async Task A_consumer_that_goes_away_in_any_phase_fails_the_backup_with_exit_7_and_leaves_nothing_behind()
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix("consumer closes stdout", output);
        foreach (var phase in BackupPhases.All)
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                using var backup = await lab.StartAtAsync(phase);
                var at = lab.Describe();
                await backup.CloseStandardOutputAsync();
                var ended = backup.EndedAfterAsync();
                backup.Continue();
                var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

                Assert.True(outcome.ExitCode == 7, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                Assert.Contains("Broken pipe", outcome.StandardError);
                lab.AssertClean();
                var (level, _) = await lab.NextBackupRestoresByteEqualAsync();
                return $"{at} → exit 7 in {await ended} ms, clean; next {level} restores equal";
            });
        }

        matrix.Complete();
    }
}
