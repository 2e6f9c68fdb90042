using System.Globalization;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// --freeze against a real qemu-guest-agent (issue #3). Each test first writes a file through the agent that stays in
/// the guest's page cache (the lab guest has no periodic writeback and a 600 s journal commit), so only a freeze puts
/// it on the disk before the backup's instant: with a freeze the restored ext4 is clean and holds the file, without
/// one it needs journal recovery and lacks it.
/// </summary>
[Collection(LabCollection.Name)]
public sealed partial class FreezeTests(AgentVmFixture agent, ITestOutputHelper output) : IClassFixture<AgentVmFixture>
{
    private LabVm Vm => agent.Vm;

    [Theory(Timeout = 180_000)]
    [InlineData("on")]
    [InlineData("auto")]
    public async Task A_backup_with_freeze_on_or_auto_freezes_the_guest_for_the_capture_thaws_it_and_restores_a_clean_file_system_with_the_unsynced_write(string mode)
    {
        output.WriteLine($"agent VM {Vm.Name} created and answering guest-ping in {agent.CreatedIn.TotalSeconds:F1} s");
        using var backups = new BackupFixture(Vm);
        var marker = await WriteMarkerAsync($"freeze-{mode}");

        var outcome = await BackupObservedAtFreezeAsync(backups, mode, expectedStatus: "frozen");

        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}: {outcome.StandardError}");
        Assert.Contains($"froze 1 file systems in {Vm.Name}", outcome.StandardError);
        Assert.Contains($"thawed 1 file systems in {Vm.Name}", outcome.StandardError);
        await AssertThawedAndRunningAsync(backups);
        var stream = await ParsedStream.ReadAsync(outcome.StandardOutput);
        Assert.Equal(FreezeState.Frozen, stream.Manifest.Freeze);
        using var images = new Ext4Image();
        var restored = await images.RestoreAsync(Vm, outcome.StandardOutput);
        Assert.DoesNotContain("needs_recovery", await Ext4Image.FeaturesAsync(restored));
        var check = await Ext4Image.CheckAsync(restored);
        Assert.True(check.ExitCode == 0, $"e2fsck -fn of the restored disk exited {check.ExitCode}: {check.Output}");
        Assert.Equal(marker.Content, await Ext4Image.ReadFileAsync(restored, marker.Name));
        // Since the backup's instant only the thaw wrote to the disk: its superblock, marked as mounted again.
        var live = await images.CopyLiveDiskAsync(Vm);
        Assert.Contains("needs_recovery", await Ext4Image.FeaturesAsync(live));
        Assert.Equal([Ext4Image.SuperblockOffset / 1024], await Ext4Image.DifferingKibBlocksAsync(live, restored));
    }

    [Fact(Timeout = 180_000)]
    public async Task A_backup_with_freeze_off_never_freezes_the_guest_and_restores_a_file_system_that_needs_recovery_and_lacks_the_unsynced_write()
    {
        using var backups = new BackupFixture(Vm);
        var marker = await WriteMarkerAsync("freeze-off");

        var outcome = await BackupObservedAtFreezeAsync(backups, "off", expectedStatus: "thawed");

        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}: {outcome.StandardError}");
        Assert.DoesNotContain("froze", outcome.StandardError);
        Assert.DoesNotContain("thawed", outcome.StandardError);
        await AssertThawedAndRunningAsync(backups);
        var stream = await ParsedStream.ReadAsync(outcome.StandardOutput);
        Assert.Equal(FreezeState.Off, stream.Manifest.Freeze);
        // The pause hook these tests use is announced, in the log and in the manifest (a production VM must never wait on it unnoticed).
        const string hook = "test hook VIRTBACKUP_TEST_PAUSE_AT=freeze is set (TEST ONLY): the backup waits at phase 'freeze' for up to 120 s, "
            + "holding the guest's file-system freeze, if any; unset it outside tests";
        Assert.Contains(hook, outcome.StandardError);
        Assert.Contains(hook, stream.Manifest.Warnings);
        using var images = new Ext4Image();
        var restored = await images.RestoreAsync(Vm, outcome.StandardOutput);
        Assert.Contains("needs_recovery", await Ext4Image.FeaturesAsync(restored));
        Assert.DoesNotContain(marker.Name.TrimStart('/'), (await Ext4Image.RootFilesAsync(restored)).Keys);
        // Nothing reached the disk since the backup's instant: the write is still only in the guest's page cache.
        Assert.Empty(await Ext4Image.DifferingKibBlocksAsync(await images.CopyLiveDiskAsync(Vm), restored));
    }

    /// <summary>Writes 48 KiB of random bytes to a new file in the guest's /mnt, without a sync; returns its path in the file system.</summary>
    private async Task<(string Name, byte[] Content)> WriteMarkerAsync(string name)
    {
        var content = new byte[48 * 1024];
        Random.Shared.NextBytes(content);
        var unique = $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)];
        await Vm.WriteGuestFileAsync($"{LabVm.GuestMountPoint}/{unique}", content);
        return ($"/{unique}", content);
    }

    /// <summary>
    /// A full backup with --freeze <paramref name="mode"/> that stops at the freeze phase (file systems frozen when a
    /// freeze was asked for, VM not yet paused, so the agent still answers), where the guest's freeze status must be
    /// <paramref name="expectedStatus"/>; then it goes on to the end.
    /// </summary>
    private async Task<CliOutcome> BackupObservedAtFreezeAsync(BackupFixture backups, string mode, string expectedStatus)
    {
        using var backup = CliProcess.Start(
            ["backup", "--domain", Vm.Name, "--level", "full", "--state-dir", backups.StateDirectory, "--freeze", mode],
            PauseAt(BackupPhase.Freeze));
        await backup.WaitForStderrAsync("reached freeze", TimeSpan.FromSeconds(60));
        var status = await Vm.FreezeStatusAsync();
        backup.Continue();
        var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(expectedStatus, status);
        return outcome;
    }

    private async Task AssertThawedAndRunningAsync(BackupFixture backups)
    {
        Assert.Equal("thawed", await Vm.FreezeStatusAsync());
        var (state, job, _) = BackupFixture.Observe(Vm.Name);
        Assert.Equal((DomainState.Running, false), (state, job));
        Assert.False(File.Exists(FrozenMarker(backups)), "the frozen marker is still there");
    }

    private string FrozenMarker(BackupFixture backups) => new CaptureMarkers(Path.Combine(backups.StateDirectory, Vm.Uuid)).Frozen.Path;

    private static Dictionary<string, string> PauseAt(BackupPhase phase) => new()
    {
        ["VIRTBACKUP_TEST_PAUSE_AT"] = BackupPhases.Name(phase),
        ["VIRTBACKUP_TEST_PAUSE_SECONDS"] = 120.ToString(CultureInfo.InvariantCulture),
    };
}
