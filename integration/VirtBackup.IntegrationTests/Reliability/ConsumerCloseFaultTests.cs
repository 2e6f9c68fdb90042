namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>The "consumer closes stdout" column of the fault matrix: EPIPE on the next write, exit 7, cleanup done.</summary>
[Collection(LabCollection.Name)]
public sealed class ConsumerCloseFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public Task A_consumer_that_goes_away_in_any_phase_fails_the_backup_with_exit_7_and_leaves_nothing_behind() =>
        new CleanFailureColumn("consumer closes stdout", ExitCode: 7, Says: "Broken pipe", ExitWithin: TimeSpan.FromSeconds(60))
            .RunAsync(output, backup => backup.CloseStandardOutputAsync());
}
