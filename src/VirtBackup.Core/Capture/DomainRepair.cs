using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// Puts a domain back in order after a virtbackup that was killed (SIGKILL: no cleanup ran): resumes a
/// VM that virtbackup paused and thaws the guest file systems it froze (the durable markers say so; a VM someone
/// else paused or froze is left alone), aborts a backup job that virtbackup started (its NBD socket lives in a
/// <see cref="Hosts.Local.JobRuntimeDirectory"/>), and removes through <paramref name="host"/> (this machine, or a
/// remote one over SSH) what killed runs made there: the job directories and scratch images their
/// <see cref="HostLeftovers"/> note names, and the scratch images their job named.
/// Uncommitted checkpoints are removed by the chain planner before the next backup. Run under the domain lock.
/// </summary>
public sealed class DomainRepair(Domain domain, CaptureMarkers markers, HostLeftovers leftovers, IHypervisorHost host, ILogger log)
{
    /// <summary>Returns what was repaired, one line each (empty when nothing was needed).</summary>
    public async Task<IReadOnlyList<string>> RunAsync(CancellationToken cancellationToken)
    {
        var repaired = new List<string>(markers.Undo(domain, "an interrupted virtbackup", log));

        var scratch = new List<string>();
        if (domain.IsActive() && domain.GetJobStats().IsBackupActive && OurJobXml() is { } jobXml)
        {
            scratch.AddRange(ScratchImages.In(jobXml));
            await using (var job = new BackupJob(domain, checkpointName: null, log))
            {
                job.Started();
                await job.EndAsync(CancellationToken.None); // cleanup: a signal must not leave it half done
            }

            repaired.Add($"aborted the backup job an interrupted virtbackup had left on '{domain.Name}'");
        }

        // Only now that no job of an interrupted run uses them: what it made on the host outside libvirt.
        foreach (var stale in await ScratchImages.RemoveStaleAsync(host, domain.Uuid, scratch, log))
        {
            log.Debug("removed {Scratch} on {Host}, left by a virtbackup that no longer runs", stale, host.Display);
        }

        await leftovers.RemoveAsync(host, log);

        foreach (var line in repaired)
        {
            log.Warning("{Repair}", line);
        }

        if (repaired.Count == 0)
        {
            log.Debug("{Domain}: no paused or frozen marker and no job of an interrupted virtbackup", domain.Name);
        }

        return repaired;
    }

    /// <summary>The XML of the domain's backup job when an interrupted virtbackup started it, else null.</summary>
    private string? OurJobXml()
    {
        try
        {
            var xml = domain.BackupGetXml();
            return JobRuntimeDirectory.IsOurs(xml) ? xml : null;
        }
        catch (LibvirtException)
        {
            // The job ended between the two calls: nothing to abort.
            return null;
        }
    }
}
