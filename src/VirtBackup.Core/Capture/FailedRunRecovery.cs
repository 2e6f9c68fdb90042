using Serilog;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// The last line of a backup that failed or was interrupted, run under the domain lock after the run's own
/// cleanup (resume, thaw, abort the job, roll back the checkpoint): it does what <c>virtbackup repair</c> does —
/// resume a VM virtbackup paused, abort a job of ours, remove checkpoints no completed stream carried. That
/// cleanup fails when libvirtd restarted meanwhile (every call on the old connection fails), so this opens a new
/// connection when the old one is gone, waiting up to <see cref="ReconnectTimeout"/> for libvirtd to answer.
/// Nothing here is cancellable and nothing throws: the run's own error is the one reported.
/// </summary>
public sealed class FailedRunRecovery(LibvirtConnection libvirt, string domainUuid, string domainName, PausedMarker marker, ChainStore store, ILogger log)
    : IAsyncDisposable
{
    public static readonly TimeSpan ReconnectTimeout = TimeSpan.FromSeconds(30);

    private bool _succeeded;

    /// <summary>The run completed: nothing to recover.</summary>
    public void Succeeded() => _succeeded = true;

    public async ValueTask DisposeAsync()
    {
        if (_succeeded)
        {
            return;
        }

        try
        {
            if (libvirt.IsAlive)
            {
                try
                {
                    await RepairAsync(libvirt);
                    return;
                }
                catch (LibvirtException e) when (!libvirt.IsAlive)
                {
                    log.Debug("the libvirt connection broke during the recovery ({Message}); reconnecting", e.Message);
                }
            }

            log.Warning("the connection to libvirt was lost (did libvirtd restart?); reconnecting to put {Domain} back in order", domainName);
            using var connection = await ReconnectAsync();
            await RepairAsync(connection);
        }
        catch (Exception e) when (e is VirtBackupException or IOException or UnauthorizedAccessException)
        {
            // Reported, not thrown: the run's own failure is what the exit code says. The next run repairs the rest.
            log.Error("could not put {Domain} back in order after the failure: {Message}. Run 'virtbackup repair --domain {Name}'",
                domainName, e.Message, domainName);
        }
    }

    private async Task RepairAsync(LibvirtConnection connection)
    {
        using var domain = connection.LookupByUuid(domainUuid);
        await new DomainRepair(domain, marker, log).RunAsync(CancellationToken.None);
        try
        {
            new ChainPlanner(domain, store, log).RemoveUncommitted();
        }
        catch (LibvirtException e) when (!domain.IsActive())
        {
            // libvirt deletes no checkpoint of an inactive domain; the next run (the VM running again) removes it.
            log.Warning("{Domain} is not running, so its uncommitted checkpoint stays until the next virtbackup run for it ({Message})", domainName, e.LibvirtMessage);
        }
    }

    private async Task<LibvirtConnection> ReconnectAsync()
    {
        var deadline = DateTime.UtcNow + ReconnectTimeout;
        while (true)
        {
            try
            {
                return LibvirtConnection.Open(libvirt.Uri);
            }
            catch (LibvirtException) when (DateTime.UtcNow < deadline)
            {
                // libvirtd is still starting: try again shortly.
                await Task.Delay(200, CancellationToken.None);
            }
        }
    }
}
