using System.Diagnostics;
using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Capture;

/// <summary>
/// The consistency protocol, top to bottom: preflight → freeze → pause → begin the backup job → read
/// NVRAM and TPM state → resume → thaw. Disks, NVRAM and TPM state are then all of one instant: the job's
/// copy-before-write keeps the disks as they were at <c>backupBegin</c>, and the state files were read
/// while the guest could not change them. Nothing here depends on disk size or on the stream's consumer,
/// so the pause window stays short. The window (manifest pauseWindowMs) is measured from suspend to resume;
/// everything that can happen before it (agent probe, state lookups, preparing the state read: locally a dry
/// run that compiles and caches it, on a remote host the command started and waiting, the paused marker)
/// does. Streaming the disks happens after this returns.
/// <see cref="PreflightAsync"/> runs first, before anything else touches the domain (even its checkpoints).
/// </summary>
public sealed class ConsistentCapture(IHostFiles files, CaptureMarkers markers, ILogger log)
{
    /// <summary>Called at the freeze, paused, backupBegin and state-read boundaries (tests only).</summary>
    public PhaseHook? Phases { get; init; }

    /// <summary>
    /// TEST ONLY (VIRTBACKUP_TEST_STATE_AFTER_RESUME): read NVRAM and TPM state this long after the resume instead of
    /// while paused. A deliberately broken capture order, so that the consistency oracle can show it catches one.
    /// </summary>
    public TimeSpan? BrokenOrderStateReadDelay { get; init; }

    /// <summary>
    /// Runs the protocol. On return the backup job is running (the caller streams and ends it) and the
    /// VM is in the state it was in before. On failure the VM has been resumed and thawed; the caller
    /// still owns aborting a job that did start (<paramref name="jobStarted"/> says so).
    /// </summary>
    public async Task<CapturedState> RunAsync(CaptureRequest request, Action jobStarted, CancellationToken cancellationToken)
    {
        var domain = request.Domain;
        await using var stateRead = await files.PrepareStateReadAsync(request.State.NvramPath, request.State.TpmStateDirectory, cancellationToken);
        log.Debug("phase: state read prepared");
        var freeze = Freeze(domain, request.Freeze);
        log.Debug("phase: guest agent asked ({Freeze})", freeze);
        try
        {
            await Phases.ReachAsync(BackupPhase.Freeze, cancellationToken);
            var running = domain.GetState().State == DomainState.Running;
            cancellationToken.ThrowIfCancellationRequested(); // a signal before the pause: do not pause at all
            (byte[]? Nvram, IReadOnlyList<HostFile> Tpm) state = (null, []);
            var pausedAt = 0L;
            var paused = TimeSpan.Zero;
            // Steps of the window, for the debug log after it: suspended, job begun, state read (timestamps).
            long suspended = 0, begun = 0, read = 0;
            if (running)
            {
                markers.Paused.Set();
                pausedAt = Stopwatch.GetTimestamp();
                domain.Suspend();
                suspended = Stopwatch.GetTimestamp();
            }

            try
            {
                await Phases.ReachAsync(BackupPhase.Paused, cancellationToken);
                cancellationToken.ThrowIfCancellationRequested(); // a signal while paused: begin no job
                domain.BackupBegin(request.BackupXml, request.CheckpointXml, request.BeginFlags);
                begun = Stopwatch.GetTimestamp();
                jobStarted();
                await Phases.ReachAsync(BackupPhase.BackupBegin, cancellationToken);
                if (BrokenOrderStateReadDelay is null)
                {
                    state = await stateRead.ReadAsync(cancellationToken);
                }

                read = Stopwatch.GetTimestamp();
                await Phases.ReachAsync(BackupPhase.StateRead, cancellationToken);
            }
            finally
            {
                if (running)
                {
                    domain.Resume();
                    paused = Stopwatch.GetElapsedTime(pausedAt);
                    markers.Paused.Clear();
                }
            }

            if (BrokenOrderStateReadDelay is { } delay)
            {
                await Task.Delay(delay, cancellationToken);
                state = await stateRead.ReadAsync(cancellationToken);
                log.Warning("TEST ONLY: NVRAM and TPM state read {Seconds} s after the resume: this backup is not of one instant", delay.TotalSeconds);
            }

            if (running)
            {
                log.Debug(
                    "phase: pause window: suspend {SuspendMs:F1} ms, backupBegin {BeginMs:F1} ms, state read {ReadMs:F1} ms, resume {ResumeMs:F1} ms",
                    Stopwatch.GetElapsedTime(pausedAt, suspended).TotalMilliseconds, Stopwatch.GetElapsedTime(suspended, begun).TotalMilliseconds,
                    Stopwatch.GetElapsedTime(begun, read).TotalMilliseconds, (paused - Stopwatch.GetElapsedTime(pausedAt, read)).TotalMilliseconds);
            }

            var (nvram, tree) = state;
            var tpm = StateLocation.WithoutSwtpmTemporaryFiles(tree);
            var pauseMs = running ? Math.Max(1, (long)paused.TotalMilliseconds) : 0;
            log.Information(
                "captured {Domain} at one instant: paused {PauseMs} ms (backup job begun, NVRAM {NvramBytes} bytes, {TpmFiles} TPM state files read)",
                domain.Name, pauseMs, nvram?.Length ?? 0, tpm.Count);
            return new CapturedState(nvram, tpm, pauseMs, freeze);
        }
        finally
        {
            if (freeze == FreezeState.Frozen)
            {
                Thaw(domain);
            }
        }
    }

    /// <summary>
    /// Before the VM is touched: can this process read everything the capture reads? Both checks run at once (on a
    /// remote host that is one round trip instead of two); when both fail, the NVRAM's error is the one reported.
    /// </summary>
    public async Task PreflightAsync(StateLocation state, CancellationToken cancellationToken)
    {
        var nvramCheck = state.NvramPath is { } nvram
            ? files.CheckReadableAsync(nvram, "UEFI NVRAM file", StateLocation.NvramAdvice, cancellationToken)
            : Task.CompletedTask;
        var tpmCheck = state.TpmStateDirectory is { } tpm
            ? files.CheckReadableAsync(tpm, "TPM state directory", state.TpmAdvice, cancellationToken)
            : Task.CompletedTask;
        await Task.WhenAll(nvramCheck, tpmCheck).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await nvramCheck;
        await tpmCheck;
        cancellationToken.ThrowIfCancellationRequested(); // what follows (planning) may remove checkpoints
    }

    private FreezeState Freeze(IDomain domain, FreezeMode mode)
    {
        if (mode == FreezeMode.Off)
        {
            return FreezeState.Off;
        }

        if (domain.GetState().State != DomainState.Running || !domain.IsGuestAgentResponsive(timeoutSeconds: 2))
        {
            if (mode == FreezeMode.On)
            {
                throw new PreflightException(
                    $"--freeze on: the guest agent of '{domain.Name}' does not answer; install and start qemu-guest-agent in the guest, "
                    + "or use --freeze auto. The VM was not touched");
            }

            log.Information("no guest agent answers in {Domain}: capturing without a file system freeze", domain.Name);
            return FreezeState.NoAgent;
        }

        // The marker first: a guest frozen by a run that is then killed stays frozen until someone thaws it.
        markers.Frozen.Set();
        int count;
        try
        {
            count = domain.FSFreeze();
        }
        catch (LibvirtException e)
        {
            // The agent thaws what it froze before a freeze fails, and one frozen by someone else is not ours to thaw.
            markers.Frozen.Clear();
            if (mode == FreezeMode.On)
            {
                throw new PreflightException(
                    $"--freeze on: the guest agent of '{domain.Name}' answers but could not freeze its file systems ({e.Message}); "
                    + "fix that in the guest, or use --freeze auto to go on without a freeze. The VM was not paused", e);
            }

            log.Warning(
                "the guest agent of {Domain} could not freeze its file systems ({Message}): capturing without a file system freeze (crash-consistent)",
                domain.Name, e.Message);
            return FreezeState.NotFrozen;
        }

        log.Information("froze {Count} file systems in {Domain}", count, domain.Name);
        return FreezeState.Frozen;
    }

    private void Thaw(IDomain domain)
    {
        try
        {
            var count = domain.FSThaw();
            markers.Frozen.Clear();
            log.Information("thawed {Count} file systems in {Domain}", count, domain.Name);
        }
        catch (LibvirtException e)
        {
            // A failed thaw must not hide the backup's own outcome. qemu-guest-agent has no timeout of its own: the
            // frozen marker stays, and this run's recovery (on a new connection), the next run or 'repair' thaws.
            log.Error("could not thaw the file systems of {Domain}: {Message}", domain.Name, e.Message);
        }
    }
}
