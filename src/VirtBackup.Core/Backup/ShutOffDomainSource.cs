using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Backup;

/// <summary>
/// A shut-off domain: nothing runs, so nothing needs pausing. Each disk image is served read-only by a private
/// qemu-nbd on the domain's host (whose image lock also keeps the domain from starting while it is read), NVRAM and TPM
/// state are read as they lie. The level is decided like a running domain's, from the chain and the persistent bitmaps
/// libvirt left in the qcow2 images: an incremental reads the dirty ∩ allocated ranges of bitmap C (the last committed
/// checkpoint), exported by qemu-nbd; a differential those of the chain's full's bitmap F, which, like every bitmap of the
/// chain, stayed enabled and so recorded every write since F (no merge of bitmaps is needed). A full, incremental or diff first creates the next checkpoint the way libvirt would
/// (<see cref="OfflineCheckpoints"/>: a new enabled bitmap in every qcow2 disk, then libvirt's record redefined), and the
/// chain advances only once the stream is complete; otherwise <see cref="OfflineCheckpoint"/> removes both again.
/// </summary>
internal sealed class ShutOffDomainSource : IBackupSource
{
    private readonly IHypervisorHost _host;
    private readonly BackupSubject _subject;
    private readonly OfflineCheckpoints _checkpoints;
    private readonly List<IServedImage> _servers = [];
    private OfflineCheckpoint? _checkpoint;

    public ShutOffDomainSource(IHypervisorHost host, BackupSubject subject)
    {
        _host = host;
        _subject = subject;
        var qcow2 = subject.Selection.Included.Where(d => d.DriverType == "qcow2").ToList();
        _checkpoints = new OfflineCheckpoints(subject.Domain, host.Images, qcow2, subject.Log);
    }

    public string Kind => "shut-off";

    public ICheckpointBitmaps Checkpoints => _checkpoints;

    /// <summary>NVRAM and TPM state as they lie (nothing runs that could change them), then the checkpoint.</summary>
    public async Task<CapturedState> CaptureAsync(ChainPlan plan, CancellationToken cancellationToken)
    {
        var captured = await ReadStateFilesAsync(cancellationToken);
        _checkpoint = new OfflineCheckpoint(_checkpoints, plan.Checkpoint, _subject.Domain.Name, _subject.Log);
        if (plan.Checkpoint is { } name)
        {
            var bitmapTargets = _subject.Selection.BitmapTargets;
            var others = _subject.Xml.Disks.Where(d => d.Device == DiskDevice.Disk).Select(d => d.Target).Except(bitmapTargets).ToList();
            // libvirt's parent is the chain's last checkpoint, as libvirt makes it for a running domain (a diff's changes
            // are relative to the full, but it still follows the last checkpoint in libvirt's tree).
            await _checkpoint.CreateAsync(
                CheckpointXml.Redefinition(name, plan.Previous?.Last?.Name, DateTimeOffset.UtcNow, bitmapTargets, others), cancellationToken);
        }

        return captured;
    }

    /// <summary>The image served by a qemu-nbd of its own; an incremental or diff reads the changes in the plan's parent bitmap.</summary>
    public async Task<ExportedDisk> ExportAsync(DomainDisk disk, ChainPlan plan, bool changesOnly, CancellationToken cancellationToken)
    {
        var bitmap = changesOnly ? plan.Parent : null;
        var server = await _host.Images.ServeAsync(disk.SourcePath!, disk.DriverType!, readOnly: true, bitmap, cancellationToken);
        _servers.Add(server);
        return new ExportedDisk(NbdUri.Unix(server.SocketPath), bitmap, Tls: null);
    }

    public void CheckExported()
    {
        if (_subject.Domain.IsActive())
        {
            throw new BackupRefusedException(
                $"'{_subject.Domain.Name}' was started while its shut-off backup began: run the backup again (it will take the running domain's way)");
        }
    }

    public IEnumerable<string> Warnings(ChainPlan plan) => [OfflineWarning(plan)];

    /// <summary>No job: the servers go on dispose.</summary>
    public Task EndAsync() => Task.CompletedTask;

    public void Commit() => _checkpoint!.Commit();

    public Task<VirtBackupException?> ExplainAsync(NbdException failure) => Task.FromResult<VirtBackupException?>(null);

    /// <summary>The servers first: the checkpoint's rollback needs the images unlocked.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var server in _servers)
            {
                await server.DisposeAsync();
            }
        }
        finally
        {
            if (_checkpoint is not null)
            {
                await _checkpoint.DisposeAsync();
            }
        }
    }

    private async Task<CapturedState> ReadStateFilesAsync(CancellationToken cancellationToken)
    {
        var (files, state) = (_host.Files, _subject.State);
        var nvram = state.NvramPath is { } nvramPath && await files.ExistsAsync(nvramPath, cancellationToken)
            ? await files.ReadFileAsync(nvramPath, cancellationToken)
            : null;
        var tpm = state.TpmStateDirectory is { } tpmDirectory && await files.ExistsAsync(tpmDirectory, cancellationToken)
            ? StateLocation.WithoutSwtpmTemporaryFiles(await files.ReadTreeAsync(tpmDirectory, cancellationToken))
            : [];
        return new CapturedState(nvram, tpm, 0, Stream.FreezeState.Off);
    }

    private static string OfflineWarning(ChainPlan plan) => plan.Level switch
    {
        Stream.BackupLevel.Inc => $"the domain was shut off: its disks were read through qemu-nbd, the changes since {plan.Parent} from the images' bitmaps; checkpoint {plan.Checkpoint} was added to them",
        Stream.BackupLevel.Diff => $"the domain was shut off: its disks were read through qemu-nbd, the changes since the chain's full {plan.Parent} from the images' bitmaps; checkpoint {plan.Checkpoint} was added to them",
        Stream.BackupLevel.Full => $"the domain was shut off: its disks were read through qemu-nbd; checkpoint {plan.Checkpoint} was added to them",
        _ => "the domain was shut off: its disks were read through qemu-nbd, no checkpoint was made",
    };
}
