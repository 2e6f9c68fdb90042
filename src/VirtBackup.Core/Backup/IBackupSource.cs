using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Backup;

/// <summary>
/// The steps in which the backup of a running domain and that of a shut-off one differ: how the chain's checkpoints are
/// made, how NVRAM and TPM state are captured, and where the disks are exported. <see cref="BackupRun"/> runs the rest,
/// once for both: plan the chain, capture, open the disks, write the stream, advance the chain, clean up. Disposing the
/// source undoes what it made and was not committed; it comes after the disks' readers were closed.
/// </summary>
internal interface IBackupSource : IAsyncDisposable
{
    /// <summary>"running" or "shut-off", for the log.</summary>
    string Kind { get; }

    /// <summary>How the planner reaches the domain's checkpoints and their bitmaps.</summary>
    ICheckpointBitmaps Checkpoints { get; }

    /// <summary>Takes the state at the backup's instant and creates <see cref="ChainPlan.Checkpoint"/> (if any) with it.</summary>
    Task<CapturedState> CaptureAsync(ChainPlan plan, CancellationToken cancellationToken);

    /// <summary>
    /// Where this machine reads <paramref name="disk"/> as it was captured, with the bitmap of the changes since
    /// <see cref="ChainPlan.Parent"/> when <paramref name="changesOnly"/> (an incremental or diff of a qcow2 disk).
    /// </summary>
    Task<ExportedDisk> ExportAsync(DomainDisk disk, ChainPlan plan, bool changesOnly, CancellationToken cancellationToken);

    /// <summary>Every disk is open: the last check before the stream is written.</summary>
    void CheckExported();

    /// <summary>Warnings for the manifest beyond the ones every backup has.</summary>
    IEnumerable<string> Warnings(ChainPlan plan);

    /// <summary>The disks were read: end what serves them, before the trailer (a stream is never complete while a job may be left).</summary>
    Task EndAsync();

    /// <summary>The stream is complete and the chain advanced: the checkpoint stays.</summary>
    void Commit();

    /// <summary>What a failed read of the disks means, when more than the NBD failure it shows up as; else null.</summary>
    Task<VirtBackupException?> ExplainAsync(NbdException failure);
}

/// <summary>A disk's NBD export as this machine reaches it, with the bitmap of the changes to read (null: read it all).</summary>
internal sealed record ExportedDisk(NbdUri Uri, string? DirtyBitmap, NbdTls? Tls);

/// <summary>The domain a run backs up, as the run found it under the domain lock, and what the run was asked.</summary>
internal sealed record BackupSubject(Domain Domain, DomainXml Xml, DiskSelection Selection, StateLocation State, BackupOptions Options, Serilog.ILogger Log);
