using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>Everything <see cref="ConsistentCapture"/> needs, decided before the VM is touched.</summary>
/// <param name="BackupXml">The &lt;domainbackup&gt; document (pull mode).</param>
/// <param name="CheckpointXml">The &lt;domaincheckpoint&gt; created with the job, or null for a copy.</param>
/// <param name="CheckpointName">That checkpoint's name, or null.</param>
public sealed record CaptureRequest(
    IDomain Domain,
    StateLocation State,
    string BackupXml,
    string? CheckpointXml,
    string? CheckpointName,
    FreezeMode Freeze)
{
    /// <summary>For <c>virDomainBackupBegin</c>: <see cref="BackupBeginFlags.ReuseExternal"/> when the scratch images were made beforehand.</summary>
    public BackupBeginFlags BeginFlags { get; init; }
}

/// <summary>What the capture took at the instant of the backup, plus how long the VM was paused.</summary>
public sealed record CapturedState(
    byte[]? Nvram,
    IReadOnlyList<HostFile> TpmFiles,
    long PauseWindowMs,
    Stream.FreezeState Freeze);
