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
    public Task A_libvirtd_restart_in_any_phase_fails_the_backup_with_exit_3_and_the_recovery_leaves_nothing_behind() =>
        new CleanFailureColumn("libvirtd restart", ExitCode: 3, Says: "The connection to libvirtd was lost", ExitWithin: TimeSpan.FromSeconds(90))
            .RunAsync(output, _ => LabHost.RunScriptAsync("restart-libvirtd.sh", [], CancellationToken.None));
}
