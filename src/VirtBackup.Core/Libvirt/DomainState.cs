namespace VirtBackup.Core.Libvirt;

/// <summary><c>virDomainState</c>.</summary>
public enum DomainState
{
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    ShuttingDown = 4,
    Shutoff = 5,
    Crashed = 6,
    PmSuspended = 7,
}

/// <summary><c>virDomainRunningReason</c>.</summary>
public enum DomainRunningReason
{
    Unknown = 0,
    Booted = 1,
    Migrated = 2,
    Restored = 3,
    FromSnapshot = 4,
    Unpaused = 5,
    MigrationCanceled = 6,
    SaveCanceled = 7,
    Wakeup = 8,
    Crashed = 9,
    Postcopy = 10,
    PostcopyFailed = 11,
}

/// <summary><c>virDomainPausedReason</c>.</summary>
public enum DomainPausedReason
{
    Unknown = 0,
    User = 1,
    Migration = 2,
    Save = 3,
    Dump = 4,
    IoError = 5,
    Watchdog = 6,
    FromSnapshot = 7,
    ShuttingDown = 8,
    Snapshot = 9,
    Crashed = 10,
    StartingUp = 11,
    Postcopy = 12,
    PostcopyFailed = 13,
    ApiError = 14,
}

/// <summary><c>virDomainShutoffReason</c>.</summary>
public enum DomainShutoffReason
{
    Unknown = 0,
    Shutdown = 1,
    Destroyed = 2,
    Crashed = 3,
    Migrated = 4,
    Saved = 5,
    Failed = 6,
    FromSnapshot = 7,
    Daemon = 8,
}

/// <summary>A domain's state and libvirt's reason code for it (whose meaning depends on the state).</summary>
public readonly record struct DomainStateInfo(DomainState State, int Reason)
{
    public DomainRunningReason? RunningReason => State == DomainState.Running ? (DomainRunningReason)Reason : null;

    public DomainPausedReason? PausedReason => State == DomainState.Paused ? (DomainPausedReason)Reason : null;

    public DomainShutoffReason? ShutoffReason => State == DomainState.Shutoff ? (DomainShutoffReason)Reason : null;

    public override string ToString() => State switch
    {
        DomainState.Running => $"running ({RunningReason})",
        DomainState.Paused => $"paused ({PausedReason})",
        DomainState.Shutoff => $"shut off ({ShutoffReason})",
        _ => $"{State} ({Reason})",
    };
}
