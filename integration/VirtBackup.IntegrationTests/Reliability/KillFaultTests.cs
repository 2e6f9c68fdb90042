namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The SIGKILL column of the fault matrix: no cleanup can run, so the next run repairs what the killed one left
/// (the paused marker, its job, its checkpoint, its job directory); and <c>virtbackup repair</c> does the same alone.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class KillFaultTests(ITestOutputHelper output)
{
    [Fact(Timeout = 300_000)]
    public async Task After_SIGKILL_in_any_phase_the_next_backup_resumes_the_vm_aborts_the_job_removes_the_checkpoint_and_restores_byte_equal()
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix("SIGKILL, then the next backup", output);
        foreach (var phase in BackupPhases.All)
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                using (var backup = await lab.StartAtAsync(phase))
                {
                    backup.Signal(Signals.Kill);
                    Assert.Equal(137, (await backup.WaitForExitAsync(TimeSpan.FromSeconds(30))).ExitCode);
                }

                var left = lab.Describe();
                Assert.Equal(ExpectedLeftovers(phase), left);
                var (level, log) = await lab.NextBackupRestoresByteEqualAsync();
                if (left.Contains("paused marker", StringComparison.Ordinal))
                {
                    Assert.Contains("which an interrupted virtbackup had paused", log);
                }

                if (left.Contains("job", StringComparison.Ordinal))
                {
                    Assert.Contains("aborted the backup job an interrupted virtbackup had left", log);
                    Assert.Contains("no completed stream carried it", log);
                }

                return $"left: {left} → the next backup repaired it; it is {level} and restores equal";
            });
        }

        matrix.Complete();
    }

    [Fact(Timeout = 180_000)]
    public async Task Repair_puts_a_killed_backup_right_and_leaves_a_vm_someone_else_paused_alone()
    {
        await using var lab = await FaultLab.CreateAsync();
        using (var backup = await lab.StartAtAsync(BackupPhase.StateRead))
        {
            backup.Signal(Signals.Kill);
            await backup.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Equal("paused, job, 1 uncommitted checkpoint, paused marker", lab.Describe());
        var repair = await VirtBackupCli.RunAsync(["repair", "--domain", lab.Vm.Name, "--state-dir", lab.StateDirectory]);
        Assert.True(repair.ExitCode == 0, repair.StandardError);
        Assert.Contains($"resumed '{lab.Vm.Name}', which an interrupted virtbackup had paused", repair.StandardError);
        Assert.Contains($"aborted the backup job an interrupted virtbackup had left on '{lab.Vm.Name}'", repair.StandardError);
        lab.AssertClean();

        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "suspend", lab.Vm.Name]);
        var again = await VirtBackupCli.RunAsync(["repair", "--domain", lab.Vm.Name, "--state-dir", lab.StateDirectory]);
        var copy = await VirtBackupCli.RunAsync([.. lab.BackupArguments("copy")]);

        Assert.Equal((0, 0), (again.ExitCode, copy.ExitCode));
        Assert.Contains("needed no repair", again.StandardError);
        Assert.Equal(DomainState.Paused, BackupFixture.Observe(lab.Vm.Name).State);
        Assert.Equal(0, (await ParsedStream.ReadAsync(copy.StandardOutput)).Manifest.PauseWindowMs);
        lab.AssertClean(DomainState.Paused);
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "resume", lab.Vm.Name]);
    }

    private static string ExpectedLeftovers(BackupPhase phase) => phase switch
    {
        BackupPhase.Preflight or BackupPhase.Freeze => "running",
        BackupPhase.Paused => "paused, paused marker",
        BackupPhase.BackupBegin or BackupPhase.StateRead => "paused, job, 1 uncommitted checkpoint, paused marker",
        _ => "running, job, 1 uncommitted checkpoint",
    };
}
