namespace VirtBackup.Core.Capture;

/// <summary>
/// The boundaries a backup passes, in order. A <see cref="PhaseHook"/> is called at each; the reliability
/// tests stop the process there (VIRTBACKUP_TEST_PAUSE_AT) to deliver a fault at an exact point.
/// </summary>
public enum BackupPhase
{
    /// <summary>Domain found, lock held, repair done; nothing checked or touched yet.</summary>
    Preflight,

    /// <summary>Preflight passed and the chain planned; the guest's file systems are frozen (when an agent answers), the VM not yet paused.</summary>
    Freeze,

    /// <summary>The VM is paused (the paused marker is written); the backup job is not begun yet.</summary>
    Paused,

    /// <summary>The backup job and its checkpoint exist; the NVRAM and TPM state are not read yet.</summary>
    BackupBegin,

    /// <summary>NVRAM and TPM state are read; the VM is still paused.</summary>
    StateRead,

    /// <summary>The VM runs again, the disks are connected over NBD and the stream has begun; no disk data is read yet.</summary>
    Streaming,

    /// <summary>Every disk's data is read; the job is not ended, the trailer not written, the chain not advanced.</summary>
    Finishing,
}

/// <summary>Called at each <see cref="BackupPhase"/> boundary. Production runs have none.</summary>
public delegate Task PhaseHook(BackupPhase phase, CancellationToken cancellationToken);

/// <summary>Names of the phases as the CLI and the documentation spell them.</summary>
public static class BackupPhases
{
    public static readonly IReadOnlyList<BackupPhase> All = Enum.GetValues<BackupPhase>();

    /// <summary>preflight, freeze, paused, backupBegin, state-read, streaming, finishing.</summary>
    public static string Name(BackupPhase phase) => phase switch
    {
        BackupPhase.BackupBegin => "backupBegin",
        BackupPhase.StateRead => "state-read",
        _ => phase.ToString().ToLowerInvariant(),
    };

    public static BackupPhase? Parse(string name) =>
        All.Cast<BackupPhase?>().FirstOrDefault(p => string.Equals(Name(p!.Value), name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Calls <paramref name="hook"/> when there is one.</summary>
    public static Task ReachAsync(this PhaseHook? hook, BackupPhase phase, CancellationToken cancellationToken) =>
        hook is null ? Task.CompletedTask : hook(phase, cancellationToken);
}
