namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>The SIGTERM column of the fault matrix (docs/RELIABILITY.md).</summary>
[Collection(LabCollection.Name)]
public sealed class SigtermFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public Task SIGTERM_in_any_phase_resumes_the_vm_aborts_the_job_rolls_back_exits_8_and_the_next_backup_restores_byte_equal() =>
        new CleanFailureColumn("SIGTERM", ExitCode: 8, Says: "was interrupted by a signal; its cleanup has run", ExitWithin: TimeSpan.FromSeconds(60))
        {
            // The run ends on the signal alone; its cleanup is timed from the log.
            ContinueAfterFault = false,
            Ending = (outcome, ended) =>
                $"exit 8, cleanup done {outcome.LoggedMilliseconds("received SIGTERM", "was interrupted by a signal")} ms after the signal, process ended after {ended} ms;",
        }.RunAsync(output, backup =>
        {
            backup.Signal(Signals.Term);
            return Task.CompletedTask;
        });
}
