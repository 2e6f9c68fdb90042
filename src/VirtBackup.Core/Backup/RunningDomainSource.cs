using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Backup;

/// <summary>
/// A running domain: a pull-mode backup job exports every disk as it was at one instant while the guest runs on, its
/// scratch images (made before the pause) holding the blocks the guest overwrites meanwhile. NVRAM, TPM state and the
/// job's checkpoint are taken in one pause by <see cref="ConsistentCapture"/>; the job ends once the disks were read.
/// </summary>
internal sealed class RunningDomainSource(
    BackupSubject subject, ConsistentCapture capture, FailedRunRecovery recovery, ScratchImages scratch, JobEndpoint endpoint, IReadOnlyList<BackupJobDisk> jobDisks)
    : IBackupSource
{
    private BackupJob? _job;

    public string Kind => "running";

    public ICheckpointBitmaps Checkpoints { get; } = new LiveCheckpoints(subject.Domain);

    /// <summary>
    /// Checks the scratch directory, starts making the scratch images (while the caller plans the chain) and opens the
    /// job's NBD endpoint: everything the job needs that can be had before the VM is touched.
    /// </summary>
    public static async Task<RunningDomainSource> OpenAsync(
        IHypervisorHost host,
        BackupSubject subject,
        ConsistentCapture capture,
        FailedRunRecovery recovery,
        HostLeftovers leftovers,
        CancellationToken cancellationToken)
    {
        var (domain, xml, options) = (subject.Domain, subject.Xml, subject.Options);
        await PreflightScratchAsync(host, options.ScratchDirectory, cancellationToken);
        var jobDisks = subject.Selection.Included
            .Select(d => new BackupJobDisk(d.Target, ScratchImages.PathFor(options.ScratchDirectory, domain.Uuid, d.Target), d.DriverType == "qcow2"))
            .ToList();
        // Made while the chain is planned; removed after the job ended (disposed after it).
        var scratch = ScratchImages.Start(host, domain, [.. jobDisks.Select(d => (d.Target, d.ScratchFile))], xml.QemuProcessIds, leftovers, subject.Log);
        try
        {
            var endpoint = await JobEndpoint.OpenAsync(host, options, domain.Uuid, xml.QemuProcessIds, leftovers, subject.Log, cancellationToken);
            return new RunningDomainSource(subject, capture, recovery, scratch, endpoint, jobDisks);
        }
        catch
        {
            await scratch.DisposeAsync();
            throw;
        }
    }

    public async Task<CapturedState> CaptureAsync(ChainPlan plan, CancellationToken cancellationToken)
    {
        recovery.Track(endpoint.Server, plan.Checkpoint);
        var excluded = subject.Selection.Excluded.Select(d => d.Target).ToList();
        var request = new CaptureRequest(
            subject.Domain,
            subject.State,
            BackupJobXml.Backup(endpoint.Server, jobDisks, excluded, plan.Parent),
            plan.Checkpoint is null ? null : BackupJobXml.Checkpoint(plan.Checkpoint, jobDisks, excluded),
            plan.Checkpoint,
            subject.Options.Freeze)
        {
            BeginFlags = await scratch.BeginFlagsAsync(),
        };

        _job = new BackupJob(subject.Domain, plan.Checkpoint, subject.Log);
        subject.Log.Debug("phase: planned");
        return await capture.RunAsync(request, _job.Started, cancellationToken);
    }

    /// <summary>The job's export of the disk; an incremental or diff reads the changes in the bitmap libvirt exports with it.</summary>
    public Task<ExportedDisk> ExportAsync(DomainDisk disk, ChainPlan plan, bool changesOnly, CancellationToken cancellationToken) =>
        Task.FromResult(new ExportedDisk(endpoint.Export(disk.Target), changesOnly ? $"backup-{disk.Target}" : null, endpoint.Tls));

    public void CheckExported()
    {
    }

    public IEnumerable<string> Warnings(ChainPlan plan) => [];

    /// <summary>Ending the job is cleanup, so no signal interrupts it (it has its own deadline).</summary>
    public async Task EndAsync()
    {
        await _job!.EndAsync(CancellationToken.None);
        subject.Log.Debug("phase: job ended");
    }

    public void Commit() => _job!.Commit();

    /// <summary>A domain that stopped took its export with it: said as such.</summary>
    public async Task<VirtBackupException?> ExplainAsync(Nbd.NbdException failure) =>
        await DomainStoppedException.HasStoppedAsync(subject.Domain) ? new DomainStoppedException(subject.Domain.Name, failure) : null;

    /// <summary>The job first (it ends and rolls back an uncommitted checkpoint), then its endpoint, then its scratch images.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_job is not null)
            {
                await _job.DisposeAsync();
            }
        }
        finally
        {
            try
            {
                await endpoint.DisposeAsync();
            }
            finally
            {
                await scratch.DisposeAsync();
            }
        }
    }

    /// <summary>QEMU creates the scratch files when the job begins: a missing directory is said before the VM is touched.</summary>
    private static async Task PreflightScratchAsync(IHypervisorHost host, string scratchDirectory, CancellationToken cancellationToken)
    {
        if (!Path.IsPathRooted(scratchDirectory))
        {
            throw new BackupRefusedException($"--scratch-dir must be an absolute path on the libvirt host, not '{scratchDirectory}'");
        }

        if (!await host.Files.ExistsAsync(scratchDirectory, cancellationToken))
        {
            throw new BackupRefusedException(
                $"the scratch directory '{scratchDirectory}' does not exist; create it (on a file system with room for what the guest writes during a backup) or pass another --scratch-dir. The VM was not touched");
        }
    }
}
