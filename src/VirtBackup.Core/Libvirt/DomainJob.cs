namespace VirtBackup.Core.Libvirt;

/// <summary><c>virDomainJobType</c>.</summary>
public enum DomainJobType
{
    None = 0,
    Bounded = 1,
    Unbounded = 2,
    Completed = 3,
    Failed = 4,
    Cancelled = 5,
}

/// <summary><c>virDomainJobOperation</c>: what a job is doing.</summary>
public enum DomainJobOperation
{
    Unknown = 0,
    Start = 1,
    Save = 2,
    Restore = 3,
    MigrationIn = 4,
    MigrationOut = 5,
    Snapshot = 6,
    SnapshotRevert = 7,
    Dump = 8,
    Backup = 9,
    SnapshotDelete = 10,
}

/// <summary><c>virDomainJobInfo</c>: the fixed-size job summary (times in milliseconds, sizes in bytes).</summary>
public sealed record DomainJobInfo(
    DomainJobType Type,
    ulong TimeElapsedMs,
    ulong DataTotal,
    ulong DataProcessed,
    ulong DataRemaining)
{
    public bool IsActive => Type is DomainJobType.Bounded or DomainJobType.Unbounded;
}

/// <summary>
/// <c>virDomainGetJobStats</c>: the job type and every typed parameter libvirt reported, by name
/// (<c>operation</c>, <c>time_elapsed</c>, <c>disk_total</c>, <c>success</c>, <c>errmsg</c>...).
/// Values are int, uint, long, ulong, double, bool or string as libvirt typed them.
/// </summary>
public sealed record DomainJobStats(DomainJobType Type, IReadOnlyDictionary<string, object> Parameters)
{
    public bool IsActive => Type is DomainJobType.Bounded or DomainJobType.Unbounded;

    /// <summary>The <c>operation</c> parameter, when reported.</summary>
    public DomainJobOperation? Operation =>
        Parameters.TryGetValue("operation", out var value) && value is int operation ? (DomainJobOperation)operation : null;

    /// <summary>True when a backup job (push or pull) is running.</summary>
    public bool IsBackupActive => IsActive && Operation == DomainJobOperation.Backup;

    /// <summary>The <c>success</c> parameter of a completed job, when reported.</summary>
    public bool? Success => Parameters.TryGetValue("success", out var value) && value is bool success ? success : null;

    /// <summary>The <c>errmsg</c> parameter of a failed job, when reported.</summary>
    public string? ErrorMessage => Parameters.TryGetValue("errmsg", out var value) ? value as string : null;
}
