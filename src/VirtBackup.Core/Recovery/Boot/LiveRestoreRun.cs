using System.Diagnostics;
using System.Xml.Linq;
using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// <c>boot --live-restore</c> after the boot: every served disk's data is pulled into its image while the guest runs
/// (<see cref="Domain.BlockPull"/>, QEMU's block-stream: what the guest wrote stays, the rest is copied from the
/// export), one disk after the other, progress logged. When every pull ended with the disk's backing store gone, the persistent definition
/// becomes the plain one (local images, no backing store, the original's error policy), the server is stopped and the
/// run directory removed: the domain is an ordinary one, as <c>restore</c> + start would have made it. A pull that ends
/// with the backing store still there failed (the server died: its reads got EIO); then, and when interrupted (every
/// running pull cancelled), the domain stays a boot from the backup (<see cref="BootPhase.Booted"/>): correct data, its copied
/// part kept, <c>boot --stop</c> removes it.
/// </summary>
public sealed class LiveRestoreRun(LibvirtConnection libvirt, ILogger log)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250), Report = TimeSpan.FromSeconds(2);

    public async Task RunAsync(BootedDomain booted, BootIsolation isolation, CancellationToken cancellationToken)
    {
        var record = booted.Record;
        var clock = Stopwatch.StartNew();
        using var domain = libvirt.LookupByUuid(record.Uuid);
        record.Phase = BootPhase.Pulling;
        record.Save();
        string? pulling = null;
        try
        {
            var done = 0UL;
            foreach (var target in booted.Targets)
            {
                // One disk at a time: two block-stream jobs at once crash QEMU 7.2 under libvirt 9.0 (seen here).
                pulling = target;
                domain.BlockPull(target);
                var (ok, end) = await WaitAsync(domain, target, done, cancellationToken);
                if (!ok)
                {
                    throw Failure(record, target);
                }

                done += end;
                pulling = null;
            }
        }
        catch (OperationCanceledException)
        {
            Cancel(domain, pulling);
            record.Phase = BootPhase.Booted;
            record.Save();
            log.Warning("live restore of {Name} interrupted: it runs on from the backup (its server stays); virtbackup boot --stop {Name} removes it", record.Name, record.Name);
            throw;
        }
        catch (LibvirtException)
        {
            Cancel(domain, pulling);
            record.Phase = BootPhase.Booted;
            record.Save();
            throw;
        }

        libvirt.Define(BootDefinition.Build(booted.State, booted.Layout, booted.Targets, isolation, served: false)).Dispose();
        record.Phase = BootPhase.Restored;
        record.Save();
        await new BootCleanup(libvirt, log).RemoveAsync(record);
        log.Information("live restore of {Name} done in {Seconds:F1} s: its disks are {Images}, no longer backed by the export; the server stopped",
            record.Name, clock.Elapsed.TotalSeconds, string.Join(", ", record.Overlays));
    }

    /// <summary>Polls the pull of <paramref name="target"/> until it ends; true when the disk has no backing store then, and its length.</summary>
    private async Task<(bool Ok, ulong End)> WaitAsync(Domain domain, string target, ulong before, CancellationToken cancellationToken)
    {
        var reported = Stopwatch.StartNew();
        BlockJobInfo? last = null;
        while (true)
        {
            await Task.Delay(Poll, cancellationToken);
            var job = domain.GetBlockJob(target);
            if (job is null)
            {
                var ok = !IsBacked(domain.GetXml(), target);
                // A small disk may be done before the first poll saw the job: its size is all of it.
                var end = last?.End ?? (ulong)domain.GetBlockCapacity(target);
                if (ok)
                {
                    Progress(domain.Name, target, new BlockJobInfo(BlockJobType.Pull, end, end), before);
                }

                return (ok, end);
            }

            last = job;
            if (reported.Elapsed >= Report)
            {
                reported.Restart();
                Progress(domain.Name, target, job, before);
            }
        }
    }

    private void Progress(string name, string target, BlockJobInfo job, ulong before) =>
        log.Information("live restore of {Name}: {Disk} {Percent:F0}% ({Done:F1} of {Total:F1} MiB; {All:F1} MiB pulled in all)", name, target,
            job.End == 0 ? 100 : 100.0 * job.Cur / job.End, job.Cur / 1048576.0, job.End / 1048576.0, (before + job.Cur) / 1048576.0);

    /// <summary>Whether the live definition still gives disk <paramref name="target"/> a backing store (an empty &lt;backingStore/&gt; is none).</summary>
    public static bool IsBacked(string liveXml, string target) =>
        XElement.Parse(liveXml).Element("devices")?.Elements("disk")
            .Where(d => (string?)d.Element("target")?.Attribute("dev") == target)
            .Any(d => d.Element("backingStore")?.Element("source") is not null) == true;

    private void Cancel(Domain domain, string? target)
    {
        if (target is null)
        {
            return;
        }

        try
        {
            if (domain.GetBlockJob(target) is not null)
            {
                domain.AbortBlockJob(target);
            }
        }
        catch (LibvirtException e)
        {
            // The job may have ended in between (or the domain stopped); what it copied is correct either way.
            log.Warning("could not cancel the pull of {Disk}: {Error}", target, e.Message);
        }
    }

    private static LiveRestoreFailedException Failure(BootRecord record, string failed)
    {
        record.Phase = BootPhase.Booted;
        record.Save();
        var server = ServeProcess.IsServing(record.ServePid, record.SocketPath)
            ? $"its server (pid {record.ServePid}) still runs: see {Path.Combine(record.RunDirectory, "serve.log")}"
            : $"its server (pid {record.ServePid}) is gone";
        return new LiveRestoreFailedException(
            $"the live restore of {record.Name} failed: the pull of {failed} ended before it was complete, {server}. "
            + $"{record.Name} stays a boot from the backup: what was pulled is kept, the rest is read from the export, and with no server "
            + $"the guest pauses (I/O error) at its next read of it, never seeing wrong data. Remove it with virtbackup boot --stop {record.Name} "
            + "(or virtbackup repair --boots), or serve the chain again on its socket and virsh resume it (RECOVERY.md)");
    }
}

/// <summary>A live restore's pull failed: the domain stays a boot from the backup.</summary>
public sealed class LiveRestoreFailedException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.DiskTransfer;
}
