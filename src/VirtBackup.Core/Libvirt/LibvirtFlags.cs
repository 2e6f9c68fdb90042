namespace VirtBackup.Core.Libvirt;

/// <summary><c>virDomainXMLFlags</c> for <see cref="Domain.GetXml"/>.</summary>
[Flags]
public enum DomainXmlFlags : uint
{
    None = 0,
    Secure = 1 << 0,
    Inactive = 1 << 1,
    UpdateCpu = 1 << 2,
    Migratable = 1 << 3,
}

/// <summary><c>virDomainCreateFlags</c> for <see cref="Domain.Start"/>.</summary>
[Flags]
public enum DomainStartFlags : uint
{
    None = 0,
    Paused = 1 << 0,
    AutoDestroy = 1 << 1,
    BypassCache = 1 << 2,
    ForceBoot = 1 << 3,
    Validate = 1 << 4,
    ResetNvram = 1 << 5,
}

/// <summary><c>virDomainUndefineFlagsValues</c> for <see cref="Domain.Undefine"/>.</summary>
[Flags]
public enum DomainUndefineFlags : uint
{
    None = 0,
    ManagedSave = 1 << 0,
    SnapshotsMetadata = 1 << 1,
    Nvram = 1 << 2,
    KeepNvram = 1 << 3,
    CheckpointsMetadata = 1 << 4,

    /// <summary>Also remove the swtpm state (libvirt 8.9 and later).</summary>
    Tpm = 1 << 5,
    KeepTpm = 1 << 6,
}

/// <summary><c>virDomainBackupBeginFlags</c>.</summary>
[Flags]
public enum BackupBeginFlags : uint
{
    None = 0,

    /// <summary>Output and scratch files exist already, made by the caller; libvirt leaves them in place.</summary>
    ReuseExternal = 1 << 0,
}

/// <summary><c>virDomainGetJobStatsFlags</c>.</summary>
[Flags]
public enum DomainJobStatsFlags : uint
{
    None = 0,

    /// <summary>Statistics of the most recently completed job instead of the current one.</summary>
    Completed = 1 << 0,
    KeepCompleted = 1 << 1,
}

/// <summary><c>virDomainCheckpointCreateFlags</c>.</summary>
[Flags]
public enum CheckpointCreateFlags : uint
{
    None = 0,

    /// <summary>Restore checkpoint metadata from XML (the bitmaps must already exist in the images).</summary>
    Redefine = 1 << 0,
    Quiesce = 1 << 1,

    /// <summary>With <see cref="Redefine"/>: check that the bitmaps exist and are usable.</summary>
    RedefineValidate = 1 << 2,
}

/// <summary><c>virDomainCheckpointXMLFlags</c>.</summary>
[Flags]
public enum CheckpointXmlFlags : uint
{
    None = 0,
    Secure = 1 << 0,

    /// <summary>Leave out the embedded domain XML.</summary>
    NoDomain = 1 << 1,

    /// <summary>Include the dynamic per-disk size of the changes since the checkpoint.</summary>
    Size = 1 << 2,
}

/// <summary><c>virDomainCheckpointListFlags</c> for <see cref="Domain.ListCheckpoints"/>.</summary>
[Flags]
public enum CheckpointListFlags : uint
{
    None = 0,
    Roots = 1 << 0,

    /// <summary>Parents before children.</summary>
    Topological = 1 << 1,
    Leaves = 1 << 2,
    NoLeaves = 1 << 3,
}

/// <summary><c>virDomainCheckpointDeleteFlags</c>.</summary>
[Flags]
public enum CheckpointDeleteFlags : uint
{
    None = 0,
    Children = 1 << 0,

    /// <summary>
    /// Forget libvirt's metadata but keep the bitmaps in the qcow2 images (creating a checkpoint of the
    /// same name later fails with "Bitmap already exists" unless it is redefined).
    /// </summary>
    MetadataOnly = 1 << 1,
    ChildrenOnly = 1 << 2,
}
