namespace VirtBackup.Tests.Capture;

/// <summary>The consistency protocol against a fake domain: the order of its steps, and what it leaves when a step fails.</summary>
public class ConsistentCaptureTests
{
    [Fact(Timeout = 10_000)]
    public async Task A_capture_freezes_pauses_begins_the_job_reads_the_state_resumes_and_thaws_in_that_order()
    {
        using var scene = new CaptureScene();
        var started = 0;

        var captured = await scene.Capture.RunAsync(scene.Request, () => started++, CancellationToken.None);

        Assert.Equal(
        [
            "virDomainGetState", "virDomainQemuAgentCommand", "virDomainFSFreeze",
            "virDomainGetState", "virDomainSuspend", "virDomainBackupBegin", "virDomainResume",
            "virDomainFSThaw",
        ], scene.Domain.Calls);
        Assert.Equal(1, started);
        Assert.Equal(CaptureScene.Nvram, captured.Nvram);
        Assert.Equal([("tpm2-00.permall", new byte[] { 1, 2, 3 })], captured.TpmFiles.Select(f => (f.RelativePath, f.Content)));
        Assert.Equal(FreezeState.Frozen, captured.Freeze);
        Assert.True(captured.PauseWindowMs >= 1);
        Assert.Equal((DomainState.Running, false, scene.Request.BackupXml), (scene.Domain.State, scene.Domain.Frozen, scene.Domain.JobXml));
        Assert.Equal([CaptureScene.Checkpoint], scene.Domain.CheckpointNames);
        Assert.False(scene.Markers.Any);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_store_swtpm_has_in_progress_is_left_out_and_the_state_file_it_will_replace_is_captured()
    {
        // swtpm writes a new state to TMP2-00.permall and renames it over tpm2-00.permall; the read may see both.
        using var scene = new CaptureScene();
        var tpm = scene.Request.State.TpmStateDirectory!;
        File.WriteAllBytes(Path.Combine(tpm, "TMP2-00.permall"), [9, 9]);
        Directory.CreateDirectory(Path.Combine(tpm, "tpm1.2"));
        File.WriteAllBytes(Path.Combine(tpm, "tpm1.2", "TMP-00.permall"), [8]);
        File.WriteAllBytes(Path.Combine(tpm, "tpm1.2", "tpm-00.permall"), [7]);

        var captured = await scene.Capture.RunAsync(scene.Request, () => { }, CancellationToken.None);

        Assert.Equal(
            [("tpm1.2/tpm-00.permall", new byte[] { 7 }), ("tpm2-00.permall", new byte[] { 1, 2, 3 })],
            captured.TpmFiles.Select(f => (f.RelativePath, f.Content)));
    }

    [Theory]
    [InlineData("TMP2-00.permall", true)]
    [InlineData("tpm2/TMP2-00.volatilestate", true)]
    [InlineData("tpm1.2/TMP-00.permall", true)]
    [InlineData("tpm2-00.permall", false)]
    [InlineData("tpm2/tpm2-00.permall", false)]
    [InlineData("tpm2/.lock", false)]
    [InlineData("tpm2/aTMP2-00.permall", false)]
    public void Only_swtpms_temporary_files_are_named_as_such(string relativePath, bool temporary) =>
        Assert.Equal(temporary, StateLocation.IsSwtpmTemporaryFile(relativePath));

    [Fact(Timeout = 10_000)]
    public async Task The_markers_exist_exactly_while_the_guest_is_frozen_and_while_it_is_paused()
    {
        using var scene = new CaptureScene();
        var seen = new List<string>();
        scene.Phases = (phase, _) =>
        {
            seen.Add($"{phase}: paused marker {scene.Markers.Paused.Exists}, frozen marker {scene.Markers.Frozen.Exists}, {scene.Domain.State}");
            return Task.CompletedTask;
        };

        await scene.Capture.RunAsync(scene.Request, () => { }, CancellationToken.None);

        Assert.Equal(
        [
            "Freeze: paused marker False, frozen marker True, Running",
            "Paused: paused marker True, frozen marker True, Paused",
            "BackupBegin: paused marker True, frozen marker True, Paused",
            "StateRead: paused marker True, frozen marker True, Paused",
        ], seen);
        Assert.False(scene.Markers.Any);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_guest_someone_else_paused_is_captured_without_a_pause_and_stays_paused()
    {
        using var scene = new CaptureScene();
        scene.Domain.State = DomainState.Paused;

        var captured = await scene.Capture.RunAsync(scene.Request, () => { }, CancellationToken.None);

        Assert.Equal(["virDomainGetState", "virDomainGetState", "virDomainBackupBegin"], scene.Domain.Calls);
        Assert.Equal((0L, FreezeState.NoAgent), (captured.PauseWindowMs, captured.Freeze));
        Assert.Equal(DomainState.Paused, scene.Domain.State);
        Assert.False(scene.Markers.Any);
    }

    [Fact(Timeout = 10_000)]
    public async Task Freeze_on_without_an_agent_fails_before_anything_is_touched()
    {
        using var scene = new CaptureScene();
        scene.Domain.AgentAnswers = false;
        scene.Request = scene.Request with { Freeze = FreezeMode.On };

        var error = await Assert.ThrowsAsync<PreflightException>(() => scene.Capture.RunAsync(scene.Request, () => { }, CancellationToken.None));

        Assert.Equal(
            "--freeze on: the guest agent of 'vm1' does not answer; install and start qemu-guest-agent in the guest, or use --freeze auto. The VM was not touched",
            error.Message);
        Assert.Equal(["virDomainGetState", "virDomainQemuAgentCommand"], scene.Domain.Calls);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task Freeze_on_with_a_freeze_the_agent_refuses_fails_before_the_pause_and_clears_the_frozen_marker()
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail("virDomainFSFreeze", LibvirtErrorCode.InternalError, "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': failed to freeze /");
        scene.Request = scene.Request with { Freeze = FreezeMode.On };

        var error = await Assert.ThrowsAsync<PreflightException>(() => scene.Capture.RunAsync(scene.Request, () => { }, CancellationToken.None));

        Assert.EndsWith("fix that in the guest, or use --freeze auto to go on without a freeze. The VM was not paused", error.Message);
        Assert.Equal(LibvirtErrorCode.InternalError, Assert.IsType<LibvirtException>(error.InnerException).Code);
        Assert.DoesNotContain("virDomainSuspend", scene.Domain.Calls);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task Freeze_auto_with_a_freeze_the_agent_refuses_captures_crash_consistent_and_says_so()
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail("virDomainFSFreeze", LibvirtErrorCode.InternalError, "internal error: failed to freeze /");

        var captured = await scene.BackupAsync();

        Assert.Equal(FreezeState.NotFrozen, captured.Freeze);
        Assert.DoesNotContain("virDomainFSThaw", scene.Domain.Calls);
        Assert.Contains(
            "Warning the guest agent of \"vm1\" could not freeze its file systems (\"libvirt virDomainFSFreeze failed for domain 'vm1': internal error: failed to freeze / (libvirt error 1)\"): capturing without a file system freeze (crash-consistent)",
            scene.Log.Lines);
        Assert.Equal((DomainState.Running, false, false), (scene.Domain.State, scene.Domain.Frozen, scene.Markers.Any));
    }

    [Theory(Timeout = 10_000)]
    [InlineData(BackupPhase.Freeze, "virDomainSuspend")]
    [InlineData(BackupPhase.Paused, "virDomainBackupBegin")]
    public async Task A_signal_before_the_pause_or_while_paused_skips_the_next_step_and_resumes_and_thaws_the_guest(BackupPhase phase, string skipped)
    {
        using var scene = new CaptureScene();
        using var signal = new CancellationTokenSource();
        scene.Phases = (reached, _) =>
        {
            if (reached == phase)
            {
                signal.Cancel();
            }

            return Task.CompletedTask;
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scene.BackupAsync(signal.Token));

        Assert.DoesNotContain(skipped, scene.Domain.Calls);
        scene.AssertUntouched();
    }
}
