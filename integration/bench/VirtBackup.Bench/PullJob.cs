using Serilog.Core;
using VirtBackup.Core.Backup;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Bench;

/// <summary>
/// A pull-mode backup job on one lab VM's vda, begun and ended through VirtBackup.Core's libvirt layer:
/// the NBD export benchmark 1 reads, and the bare calls benchmark 3 times.
/// </summary>
internal sealed class PullJob(Domain domain, JobRuntimeDirectory runtime, BackupJob job) : IAsyncDisposable
{
    public Domain Domain { get; } = domain;

    public NbdUri Uri => NbdUri.Unix(runtime.SocketPath, "vda");

    /// <summary>The job's XML documents for <paramref name="domain"/>; with a checkpoint when <paramref name="checkpoint"/> is given.</summary>
    public static (string Backup, string? Checkpoint, JobRuntimeDirectory Runtime) Xml(Domain domain, string? checkpoint)
    {
        var xml = DomainXml.Parse(domain.GetXml());
        var runtime = JobRuntimeDirectory.Create(domain.Uuid, xml.QemuProcessIds);
        var disks = new[] { new BackupJobDisk("vda", Path.Combine(BackupOptions.DefaultScratchDirectory, $"{domain.Name}-vda.scratch"), Bitmaps: true) };
        return (BackupJobXml.Backup(runtime.SocketPath, disks, [], null),
            checkpoint is null ? null : BackupJobXml.Checkpoint(checkpoint, disks, []),
            runtime);
    }

    /// <summary>Begins a copy job (no checkpoint) and returns once the export is ready.</summary>
    public static PullJob Begin(Domain domain)
    {
        var (backup, _, runtime) = Xml(domain, null);
        var job = new BackupJob(domain, null, Logger.None);
        domain.BackupBegin(backup);
        job.Started();
        return new PullJob(domain, runtime, job);
    }

    /// <summary>Aborts the job and waits until libvirt reports it gone.</summary>
    public async ValueTask DisposeAsync()
    {
        await job.EndAsync(CancellationToken.None);
        await job.DisposeAsync();
        runtime.Dispose();
    }
}
