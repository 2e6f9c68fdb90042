namespace VirtBackup.IntegrationTests.Backup;

/// <summary>Backups with a real guest agent interrupted while the guest is frozen.</summary>
public sealed partial class FreezeTests
{
    [Theory(Timeout = 180_000)]
    [InlineData(BackupPhase.Freeze)]
    [InlineData(BackupPhase.Paused)]
    [InlineData(BackupPhase.BackupBegin)]
    public async Task SIGTERM_while_the_guest_is_frozen_thaws_it_leaves_the_vm_running_and_the_next_backup_freezes_again(BackupPhase phase)
    {
        using var backups = new BackupFixture(Vm);
        using var backup = CliProcess.Start(
            ["backup", "--domain", Vm.Name, "--level", "full", "--state-dir", backups.StateDirectory, "--freeze", "on"], PauseAt(phase));
        await backup.WaitForStderrAsync($"reached {BackupPhases.Name(phase)}", TimeSpan.FromSeconds(60));
        Assert.True(File.Exists(FrozenMarker(backups)), "no frozen marker while the guest is frozen");

        backup.Signal(Signals.Term);
        var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(outcome.ExitCode == 8, $"exit {outcome.ExitCode}: {outcome.StandardError}");
        Assert.Contains($"thawed 1 file systems in {Vm.Name}", outcome.StandardError);
        await AssertThawedAndRunningAsync(backups);
        var next = await backups.BackupAsync("full", "--freeze", "on");
        Assert.Equal(FreezeState.Frozen, next.Manifest.Freeze);
        await AssertThawedAndRunningAsync(backups);
    }

    [Fact(Timeout = 180_000)]
    public async Task SIGKILL_while_the_guest_is_frozen_and_paused_leaves_it_so_until_repair_resumes_the_vm_and_thaws_its_file_systems()
    {
        using var backups = new BackupFixture(Vm);
        using var backup = CliProcess.Start(
            ["backup", "--domain", Vm.Name, "--level", "full", "--state-dir", backups.StateDirectory, "--freeze", "on"], PauseAt(BackupPhase.Paused));
        await backup.WaitForStderrAsync("reached paused", TimeSpan.FromSeconds(60));

        backup.Signal(Signals.Kill);
        await backup.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(DomainState.Paused, BackupFixture.Observe(Vm.Name).State);
        Assert.True(File.Exists(FrozenMarker(backups)), "the killed run left no frozen marker");
        var repair = await VirtBackupCli.RunAsync(["repair", "--domain", Vm.Name, "--state-dir", backups.StateDirectory]);
        Assert.True(repair.ExitCode == 0, $"repair exited {repair.ExitCode}: {repair.StandardError}");
        Assert.Contains($"resumed '{Vm.Name}', which an interrupted virtbackup had paused", repair.StandardError);
        Assert.Contains($"thawed 1 file systems of '{Vm.Name}', which an interrupted virtbackup had frozen", repair.StandardError);
        await AssertThawedAndRunningAsync(backups);
        var next = await backups.BackupAsync("auto", "--freeze", "on");
        Assert.Equal(FreezeState.Frozen, next.Manifest.Freeze);
    }
}
