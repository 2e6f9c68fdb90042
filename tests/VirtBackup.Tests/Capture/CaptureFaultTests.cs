using Serilog.Events;

namespace VirtBackup.Tests.Capture;

/// <summary>
/// A backup run's skeleton (recovery, job, capture, streaming) with a fault injected at each step: the run fails with
/// the fault's own error, and the VM is left as it was (running, thawed, no job, no checkpoint of this run, no marker),
/// or, where libvirt cannot do that, with the marker that lets the next run finish the job.
/// </summary>
public class CaptureFaultTests
{
    [Theory(Timeout = 10_000)]
    [InlineData("virDomainSuspend", LibvirtErrorCode.OperationFailed, "operation failed: could not pause")]
    [InlineData("virDomainBackupBegin", LibvirtErrorCode.OperationFailed, "operation failed: Bitmap already exists: virtbackup-0123456789ab-0001")]
    [InlineData("virDomainBackupBegin", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain has active block job")]
    [InlineData("virDomainResume", LibvirtErrorCode.OperationFailed, "operation failed: resume failed")]
    public async Task A_libvirt_call_of_the_capture_that_fails_once_fails_the_run_and_leaves_the_VM_as_it_was(
        string operation, LibvirtErrorCode code, string message)
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail(operation, code, message);

        var error = await Assert.ThrowsAsync<LibvirtException>(() => scene.BackupAsync());

        Assert.Equal((operation, code, message), (error.Operation, error.Code, error.LibvirtMessage));
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_failed_resume_leaves_the_guest_paused_and_frozen_only_until_the_recovery_resumes_and_thaws_it()
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail("virDomainResume", LibvirtErrorCode.OperationFailed, "operation failed: resume failed");

        await Assert.ThrowsAsync<LibvirtException>(() => scene.BackupAsync());

        Assert.Equal(
        [
            "Error could not thaw the file systems of \"vm1\": \"libvirt virDomainFSThaw failed for domain 'vm1': Requested operation is not valid: domain is not running (libvirt error 55)\"",
            $"Information rolled back checkpoint \"{CaptureScene.Checkpoint}\" of \"vm1\": the next incremental covers these changes too",
            "Warning \"resumed 'vm1', which this run had paused\"",
            "Warning \"thawed 2 file systems of 'vm1', which this run had frozen\"",
        ], scene.Log.AtLeast(LogEventLevel.Information).Where(l => !l.StartsWith("Information froze", StringComparison.Ordinal)));
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_resume_libvirt_refuses_twice_keeps_the_paused_marker_so_that_the_next_run_resumes_the_guest()
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail("virDomainResume", LibvirtErrorCode.OperationFailed, "operation failed: resume failed", times: 2);

        await Assert.ThrowsAsync<LibvirtException>(() => scene.BackupAsync());

        Assert.Equal((DomainState.Paused, true), (scene.Domain.State, scene.Markers.Paused.Exists));
        Assert.Contains(
            "Error could not put \"vm1\" back in order after the failure: \"libvirt virDomainResume failed for domain 'vm1': operation failed: resume failed (libvirt error 9)\". Run 'virtbackup repair --domain \"vm1\"'",
            scene.Log.Lines);

        var done = scene.Markers.Undo(scene.Domain, "an interrupted virtbackup", scene.Log.Logger);

        Assert.Equal(["resumed 'vm1', which an interrupted virtbackup had paused", "thawed 2 file systems of 'vm1', which an interrupted virtbackup had frozen"], done);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_state_read_that_fails_inside_the_pause_resumes_aborts_the_job_and_rolls_back_its_checkpoint()
    {
        using var scene = new CaptureScene();
        scene.Phases = (phase, _) =>
        {
            if (phase == BackupPhase.BackupBegin)
            {
                File.Delete(scene.NvramPath);
            }

            return Task.CompletedTask;
        };

        var failure = await Assert.ThrowsAsync<HostException>(() => scene.BackupAsync());

        Assert.IsType<FileNotFoundException>(failure.InnerException);

        Assert.Equal(["virDomainResume", "virDomainFSThaw", "virDomainIsActive", "virDomainGetJobStats", "virDomainAbortJob"],
            scene.Domain.Calls.SkipWhile(c => c != "virDomainResume").Take(5));
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_failure_while_streaming_aborts_the_job_and_rolls_back_its_checkpoint()
    {
        using var scene = new CaptureScene();
        scene.Streaming = () => throw new IOException("the NBD export went away");

        var error = await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal("the NBD export went away", error.Message);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task An_abort_that_fails_is_done_again_by_the_recovery()
    {
        using var scene = new CaptureScene();
        scene.Streaming = () =>
        {
            scene.Domain.Fail("virDomainAbortJob", LibvirtErrorCode.OperationFailed, "operation failed: abort failed");
            throw new IOException("the NBD export went away");
        };

        await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal(2, scene.Domain.Calls.Count(c => c == "virDomainAbortJob"));
        Assert.Contains(
            "Warning ending the backup job of \"vm1\": \"libvirt virDomainAbortJob failed for domain 'vm1': operation failed: abort failed (libvirt error 9)\"",
            scene.Log.Lines);
        Assert.Contains("Warning aborted the backup job of this run on '\"vm1\"'", scene.Log.Lines);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_job_someone_else_runs_fails_the_begin_and_is_left_running()
    {
        using var scene = new CaptureScene();
        var theirs = BackupJobXml.Backup(JobServer.Unix("/run/someone-else/nbd.sock"), [new BackupJobDisk("vda", "/tmp/theirs.scratch", true)], [], null);
        scene.Domain.JobXml = theirs;

        var error = await Assert.ThrowsAsync<LibvirtException>(() => scene.BackupAsync());

        Assert.Equal((LibvirtErrorCode.OperationInvalid, "virDomainBackupBegin"), (error.Code, error.Operation));
        Assert.Equal(theirs, scene.Domain.JobXml);
        Assert.DoesNotContain("virDomainAbortJob", scene.Domain.Calls);
        Assert.Equal((DomainState.Running, false, false), (scene.Domain.State, scene.Domain.Frozen, scene.Markers.Any));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_domain_that_stops_while_streaming_keeps_its_uncommitted_checkpoint_for_the_next_run_and_says_so()
    {
        using var scene = new CaptureScene();
        scene.Streaming = () =>
        {
            scene.Domain.Stop();
            throw new IOException("the NBD export went away");
        };

        await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal((DomainState.Shutoff, false), (scene.Domain.State, scene.Markers.Any));
        Assert.Equal([CaptureScene.Checkpoint], scene.Domain.CheckpointNames);
        Assert.Contains(
            "Warning \"vm1\" is not running, so its uncommitted checkpoint stays until the next virtbackup run for it (\"Requested operation is not valid: domain is not running\")",
            scene.Log.Lines);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_domain_that_vanishes_while_paused_fails_the_run_with_libvirts_not_found_and_leaves_no_marker()
    {
        using var scene = new CaptureScene();
        scene.Domain.Before("virDomainBackupBegin", () =>
        {
            scene.Domain.Vanish();
            scene.Connection.Domain = null;
        });

        var error = await Assert.ThrowsAsync<DomainNotFoundException>(() => scene.BackupAsync());

        Assert.Equal(LibvirtErrorCode.NoDomain, error.Code);
        Assert.False(scene.Markers.Any);
        Assert.Contains("Warning \"vm1\" no longer exists: it is neither paused nor frozen, and libvirt keeps no job or checkpoint of it", scene.Log.Lines);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_domain_that_vanishes_while_streaming_fails_the_run_with_the_streams_error()
    {
        using var scene = new CaptureScene();
        scene.Streaming = () =>
        {
            scene.Domain.Vanish();
            scene.Connection.Domain = null;
            throw new IOException("the NBD export went away");
        };

        var error = await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal("the NBD export went away", error.Message);
        Assert.False(scene.Markers.Any);
        Assert.Equal(0, scene.Connection.Reopens);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_libvirtd_restart_while_streaming_is_recovered_on_a_new_connection()
    {
        using var scene = new CaptureScene();
        scene.Connection.ReopenFailures = 2;
        scene.Connection.Next = new Fakes.FakeConnection(scene.Domain);
        scene.Connection.OnReopen = () => scene.Domain.Disconnected = false;
        scene.Streaming = () =>
        {
            scene.Domain.Disconnected = true;
            scene.Connection.IsAlive = false;
            throw new IOException("the NBD export went away");
        };

        await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal((3, 1), (scene.Connection.Reopens, scene.Connection.Next.Lookups));
        Assert.Contains(
            "Warning the connection to libvirt was lost (did libvirtd restart?); reconnecting to put \"vm1\" back in order", scene.Log.Lines);
        scene.AssertUntouched();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_libvirtd_that_does_not_come_back_is_reported_and_the_run_fails_with_its_own_error()
    {
        using var scene = new CaptureScene();
        scene.ReconnectTimeout = TimeSpan.FromMilliseconds(300);
        scene.Connection.ReopenFailures = int.MaxValue;
        scene.Streaming = () =>
        {
            scene.Domain.Disconnected = true;
            scene.Connection.IsAlive = false;
            throw new IOException("the NBD export went away");
        };

        var error = await Assert.ThrowsAsync<IOException>(() => scene.BackupAsync());

        Assert.Equal("the NBD export went away", error.Message);
        Assert.Contains(
            "Error could not put \"vm1\" back in order after the failure: \"libvirt virConnectOpen('qemu:///system') failed: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused (libvirt error 38)\". Run 'virtbackup repair --domain \"vm1\"'",
            scene.Log.Lines);
        Assert.Equal([CaptureScene.Checkpoint], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_thaw_that_fails_after_a_complete_run_keeps_the_frozen_marker_and_the_next_run_thaws()
    {
        using var scene = new CaptureScene();
        scene.Domain.Fail("virDomainFSThaw", LibvirtErrorCode.AgentUnresponsive, "Guest agent is not responding: QEMU guest agent is not connected");

        await scene.BackupAsync();

        Assert.Equal((true, true, false), (scene.Domain.Frozen, scene.Markers.Frozen.Exists, scene.Markers.Paused.Exists));

        var done = scene.Markers.Undo(scene.Domain, "an interrupted virtbackup", scene.Log.Logger);

        Assert.Equal(["thawed 2 file systems of 'vm1', which an interrupted virtbackup had frozen"], done);
        Assert.Equal((false, false), (scene.Domain.Frozen, scene.Markers.Any));
    }

    [Fact(Timeout = 10_000)]
    public async Task The_recovery_keeps_a_checkpoint_a_completed_stream_committed()
    {
        using var scene = new CaptureScene();
        scene.Domain.AddCheckpoint(CaptureScene.Checkpoint);
        scene.Store.Save(new ChainState(scene.Domain.Uuid, "vm1", "0123456789ab", ["vda"],
            [new CommittedCheckpoint(CaptureScene.Checkpoint, null, "full", DateTimeOffset.UnixEpoch, "<domaincheckpoint/>")]));

        await using (var recovery = new FailedRunRecovery(scene.Connection, scene.Domain.Uuid, "vm1", scene.Markers, scene.Store, scene.Log.Logger))
        {
            recovery.Track(scene.Server, CaptureScene.Checkpoint);
        }

        Assert.Equal([CaptureScene.Checkpoint], scene.Domain.CheckpointNames);
        Assert.Equal(1, scene.Connection.Lookups);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_recovery_of_a_run_that_succeeded_or_touched_nothing_makes_no_libvirt_call()
    {
        using var scene = new CaptureScene();

        await using (var recovery = new FailedRunRecovery(scene.Connection, scene.Domain.Uuid, "vm1", scene.Markers, scene.Store, scene.Log.Logger))
        {
            recovery.Track(scene.Server, CaptureScene.Checkpoint);
            recovery.Succeeded();
        }

        await using (new FailedRunRecovery(scene.Connection, scene.Domain.Uuid, "vm1", scene.Markers, scene.Store, scene.Log.Logger))
        {
        }

        Assert.Equal((0, 0), (scene.Connection.Lookups, scene.Domain.Calls.Count));
    }
}
