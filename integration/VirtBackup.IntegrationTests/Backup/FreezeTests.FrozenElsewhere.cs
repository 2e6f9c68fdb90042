namespace VirtBackup.IntegrationTests.Backup;

/// <summary>An agent that answers but whose freeze fails: here because someone else froze the guest already.</summary>
public sealed partial class FreezeTests
{
    [Fact(Timeout = 180_000)]
    public async Task When_the_agent_answers_but_cannot_freeze_auto_backs_up_crash_consistent_with_a_warning_and_on_refuses_before_pausing()
    {
        using var backups = new BackupFixture(Vm);
        await Vm.AgentCommandAsync("guest-fsfreeze-freeze");
        try
        {
            Assert.Equal("frozen", await Vm.FreezeStatusAsync());

            var auto = await backups.CliAsync("full", "--freeze", "auto");

            Assert.True(auto.ExitCode == 0, $"--freeze auto exited {auto.ExitCode}: {auto.StandardError}");
            Assert.Contains($"the guest agent of {Vm.Name} could not freeze its file systems", auto.StandardError);
            Assert.DoesNotContain("thawed", auto.StandardError);
            var stream = await ParsedStream.ReadAsync(auto.StandardOutput);
            Assert.Equal(FreezeState.NotFrozen, stream.Manifest.Freeze);
            Assert.Contains(
                "the guest agent answered but could not freeze the file systems: the disks are crash-consistent, not file-system-consistent",
                stream.Manifest.Warnings);

            var on = await backups.CliAsync("full", "--freeze", "on");

            Assert.True(on.ExitCode == 4, $"--freeze on exited {on.ExitCode}: {on.StandardError}");
            Assert.Contains($"--freeze on: the guest agent of '{Vm.Name}' answers but could not freeze its file systems", on.StandardError);
            Assert.DoesNotContain("captured", on.StandardError);
            Assert.Empty(on.StandardOutput);

            // Neither run thawed a freeze that was not its own, and neither left a marker, a job or a paused VM.
            Assert.Equal("frozen", await Vm.FreezeStatusAsync());
            Assert.False(File.Exists(FrozenMarker(backups)), "a frozen marker was left for a freeze that was not ours");
            var (state, job, _) = BackupFixture.Observe(Vm.Name);
            Assert.Equal((DomainState.Running, false), (state, job));
        }
        finally
        {
            await Vm.AgentCommandAsync("guest-fsfreeze-thaw");
        }

        await AssertThawedAndRunningAsync(backups);
    }
}
