using Serilog;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// The last line of a backup that failed or was interrupted, run under the domain lock after the run's own
/// cleanup (resume, thaw, abort the job, roll back the checkpoint) and undoing only what this run did: resume the
/// VM if this run's paused marker is still there, thaw the guest if its frozen marker is, abort the job if it is this run's (its NBD socket, or its TCP port), delete this
/// run's checkpoint if no completed stream carried it; of a domain that no longer exists, only the markers go. That cleanup fails when libvirtd restarted meanwhile (every
/// call on the old connection fails), so this opens a new connection when the old one is gone, waiting up to
/// <see cref="DefaultReconnectTimeout"/> for libvirtd to answer. Nothing here is cancellable and nothing throws: the run's
/// own error is the one reported.
/// </summary>
public sealed class FailedRunRecovery(IDomainConnection libvirt, string domainUuid, string domainName, CaptureMarkers markers, ChainStore store, ILogger log)
    : IAsyncDisposable
{
    public static readonly TimeSpan DefaultReconnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for libvirtd to answer a new connection (<see cref="DefaultReconnectTimeout"/>).</summary>
    public TimeSpan ReconnectTimeout { get; init; } = DefaultReconnectTimeout;

    private bool _succeeded;
    private JobServer? _server;
    private string? _checkpoint;
    private IHypervisorHost? _host;
    private HostLeftovers? _leftovers;

    /// <summary>What this run is about to create: a job serving on <paramref name="server"/>, and <paramref name="checkpoint"/>.</summary>
    public void Track(JobServer server, string? checkpoint)
    {
        _server = server;
        _checkpoint = checkpoint;
    }

    /// <summary>
    /// Where this run makes things outside libvirt (its job directory, its scratch images: noted in
    /// <paramref name="leftovers"/>): what the run's own cleanup could not remove goes once its job is aborted.
    /// </summary>
    public void TrackHost(IHypervisorHost host, HostLeftovers leftovers)
    {
        _host = host;
        _leftovers = leftovers;
    }

    /// <summary>The run completed: nothing to recover.</summary>
    public void Succeeded() => _succeeded = true;

    public async ValueTask DisposeAsync()
    {
        var leftOnHost = _host is not null && _leftovers is not null && _leftovers.On(_host).Count > 0;
        if (_succeeded || (!markers.Any && _server is null && !leftOnHost))
        {
            return;
        }

        try
        {
            if (libvirt.IsAlive)
            {
                try
                {
                    await RecoverAsync(libvirt);
                    return;
                }
                catch (LibvirtException e) when (!libvirt.IsAlive)
                {
                    log.Debug("the libvirt connection broke during the recovery ({Message}); reconnecting", e.Message);
                }
            }

            log.Warning("the connection to libvirt was lost (did libvirtd restart?); reconnecting to put {Domain} back in order", domainName);
            using var connection = await ReconnectAsync();
            await RecoverAsync(connection);
        }
        catch (Exception e) when (e is VirtBackupException or IOException or UnauthorizedAccessException)
        {
            // Reported, not thrown: the run's own failure is what the exit code says. The next run repairs the rest.
            log.Error("could not put {Domain} back in order after the failure: {Message}. Run 'virtbackup repair --domain {Name}'",
                domainName, e.Message, domainName);
        }
    }

    private async Task RecoverAsync(IDomainConnection connection)
    {
        using var domain = LookUp(connection);
        if (domain is null)
        {
            return;
        }

        foreach (var line in markers.Undo(domain, "this run", log))
        {
            log.Warning("{Recovery}", line);
        }

        if (_server is not null && domain.IsActive() && domain.GetJobStats().IsBackupActive && IsThisRunsJob(domain))
        {
            await using (var job = new BackupJob(domain, checkpointName: null, log))
            {
                job.Started();
                await job.EndAsync(CancellationToken.None);
            }

            log.Warning("aborted the backup job of this run on '{Domain}'", domainName);
        }

        if (_host is not null && _leftovers is not null)
        {
            // After the abort: no job of this run uses them any more.
            await _leftovers.RemoveAsync(_host, log);
        }

        var committed = store.Load(domainUuid)?.Checkpoints.Any(c => c.Name == _checkpoint) ?? false;
        if (_checkpoint is not null && !committed && domain.ListCheckpoints().Contains(_checkpoint))
        {
            try
            {
                domain.CheckpointDelete(_checkpoint);
                log.Warning("removed checkpoint {Checkpoint} of {Domain}: no completed stream carried it", _checkpoint, domainName);
            }
            catch (LibvirtException e) when (!domain.IsActive())
            {
                // libvirt deletes no checkpoint of an inactive domain; the next run (the VM running again) removes it.
                log.Warning("{Domain} is not running, so its uncommitted checkpoint stays until the next virtbackup run for it ({Message})",
                    domainName, e.LibvirtMessage);
            }
        }
    }

    /// <summary>The domain, or null when it no longer exists: then its markers go, as a domain that does not run is neither paused nor frozen.</summary>
    private IDomain? LookUp(IDomainConnection connection)
    {
        try
        {
            return connection.LookupDomainByUuid(domainUuid);
        }
        catch (DomainNotFoundException)
        {
            // Undefined while stopped (a transient domain destroyed, say): nothing of it is left to put back in order.
            markers.Paused.Clear();
            markers.Frozen.Clear();
            log.Warning("{Domain} no longer exists: it is neither paused nor frozen, and libvirt keeps no job or checkpoint of it", domainName);
            return null;
        }
    }

    private bool IsThisRunsJob(IDomain domain)
    {
        try
        {
            return _server!.Serves(domain.BackupGetXml());
        }
        catch (LibvirtException) when (domain.IsActive() && !domain.GetJobStats().IsBackupActive)
        {
            // The job ended between the two calls: nothing to abort.
            return false;
        }
    }

    private async Task<IDomainConnection> ReconnectAsync()
    {
        var deadline = DateTime.UtcNow + ReconnectTimeout;
        while (true)
        {
            try
            {
                return libvirt.Reopen();
            }
            catch (LibvirtException) when (DateTime.UtcNow < deadline)
            {
                // libvirtd is still starting: try again shortly.
                await Task.Delay(200, CancellationToken.None);
            }
        }
    }
}
