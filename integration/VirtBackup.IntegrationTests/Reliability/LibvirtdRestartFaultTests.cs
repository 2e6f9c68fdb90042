namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The libvirtd-restart column of the fault matrix, and every test that restarts libvirtd (it disturbs whatever
/// else uses libvirt on the machine, so all of it is here). The running job, the pause and the checkpoint survive
/// a restart; virtbackup's connection does not: the run fails with exit 3, and its recovery opens a new connection
/// to resume the VM, abort the job and remove the checkpoint.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class LibvirtdRestartFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public async Task A_libvirtd_restart_in_any_phase_fails_the_backup_with_exit_3_and_the_recovery_leaves_nothing_behind()
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix("libvirtd restart", output);
        foreach (var phase in BackupPhases.All)
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                using var backup = await lab.StartAtAsync(phase);
                var at = lab.Describe();
                await LabHost.RunScriptAsync("restart-libvirtd.sh", [], CancellationToken.None);
                var ended = backup.EndedAfterAsync();
                backup.Continue();
                var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(90));

                Assert.True(outcome.ExitCode == 3, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                Assert.Contains("The connection to libvirtd was lost", outcome.StandardError);
                lab.AssertClean();
                var (level, _) = await lab.NextBackupRestoresByteEqualAsync();
                return $"{at} → exit 3 in {await ended} ms, clean; next {level} restores equal";
            });
        }

        matrix.Complete();
    }
}
