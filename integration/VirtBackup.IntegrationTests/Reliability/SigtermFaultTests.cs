namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>The SIGTERM column of the fault matrix (docs/RELIABILITY.md).</summary>
[Collection(LabCollection.Name)]
public sealed class SigtermFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public async Task SIGTERM_in_any_phase_resumes_the_vm_aborts_the_job_rolls_back_exits_8_and_the_next_backup_restores_byte_equal()
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix("SIGTERM", output);
        foreach (var phase in BackupPhases.All)
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                using var backup = await lab.StartAtAsync(phase);
                var at = lab.Describe();
                var ended = backup.EndedAfterAsync();
                backup.Signal(Signals.Term);
                var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

                Assert.True(outcome.ExitCode == 8, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                Assert.Contains("was interrupted by a signal; its cleanup has run", outcome.StandardError);
                lab.AssertClean();
                var (level, _) = await lab.NextBackupRestoresByteEqualAsync();
                var cleanup = outcome.LoggedMilliseconds("received SIGTERM", "was interrupted by a signal");
                return $"{at} → exit 8, cleanup done {cleanup} ms after the signal, process ended after {await ended} ms; clean; next {level} restores equal";
            });
        }

        matrix.Complete();
    }
}
