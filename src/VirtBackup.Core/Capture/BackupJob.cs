using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// Owns a pull-mode backup job and the checkpoint created with it. Ending it normally aborts the job
/// (that is how a pull job finishes); disposing it without <see cref="Commit"/> also deletes the
/// checkpoint, so libvirt merges its bitmap into the parent and the next incremental still covers
/// every change since the last completed stream.
/// </summary>
public sealed class BackupJob(IDomain domain, string? checkpointName, ILogger log) : IAsyncDisposable
{
    private static readonly TimeSpan EndTimeout = TimeSpan.FromSeconds(60);
    private bool _started;
    private bool _ended;
    private bool _committed;

    public IDomain Domain => domain;

    public string? CheckpointName => checkpointName;

    /// <summary>Called by the capture the moment libvirt accepted the job.</summary>
    public void Started() => _started = true;

    /// <summary>Ends the job; call after the disks were read.</summary>
    public async Task EndAsync(CancellationToken cancellationToken)
    {
        if (_started && !_ended)
        {
            _ended = true;
            await AbortAndWaitAsync(cancellationToken);
        }
    }

    /// <summary>The stream is complete: the checkpoint stays and the chain may continue from it.</summary>
    public void Commit() => _committed = true;

    public async ValueTask DisposeAsync()
    {
        if (_started && !_ended)
        {
            _ended = true;
            try
            {
                await AbortAndWaitAsync(CancellationToken.None);
            }
            catch (LibvirtException e)
            {
                // The job may already be gone (the domain stopped); what matters is that none is left.
                log.Warning("ending the backup job of {Domain}: {Message}", domain.Name, e.Message);
            }
        }

        if (_started && !_committed && checkpointName is not null)
        {
            RollBackCheckpoint(checkpointName);
        }
    }

    private async Task AbortAndWaitAsync(CancellationToken cancellationToken)
    {
        if (!domain.IsActive() || !domain.GetJobStats().IsBackupActive)
        {
            return;
        }

        domain.AbortJob();
        // libvirt ends a pull job within milliseconds of the abort (it cancels the job's block jobs): look again at
        // once, then at short, growing intervals, instead of sleeping a fixed 20 ms per look.
        var deadline = DateTime.UtcNow + EndTimeout;
        var delayMs = 1;
        while (JobStillActive())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new BackupJobException($"the backup job of '{domain.Name}' did not end within {EndTimeout.TotalSeconds} s of being aborted");
            }

            await Task.Delay(delayMs, cancellationToken);
            delayMs = Math.Min(delayMs * 2, 16);
        }
    }

    /// <summary>One round trip while the domain runs (the job's state); the domain's state only when that fails.</summary>
    private bool JobStillActive()
    {
        try
        {
            return domain.GetJobStats().IsActive;
        }
        catch (LibvirtException) when (!domain.IsActive())
        {
            return false;
        }
    }

    private void RollBackCheckpoint(string name)
    {
        try
        {
            domain.CheckpointDelete(name);
            log.Information("rolled back checkpoint {Checkpoint} of {Domain}: the next incremental covers these changes too", name, domain.Name);
        }
        catch (LibvirtException e)
        {
            // Reported, not thrown: the recovery after a failed run and every next run remove uncommitted checkpoints of ours.
            log.Warning("could not roll back checkpoint {Checkpoint} of {Domain} yet: {Message}", name, domain.Name, e.Message);
        }
    }
}

/// <summary>The backup job did not behave (did not end, ended with an error).</summary>
public sealed class BackupJobException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Libvirt;
}
