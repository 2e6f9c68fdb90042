namespace VirtBackup.Core.Libvirt;

/// <summary>What a <c>&lt;disk device=...&gt;</c> is.</summary>
public enum DiskDevice
{
    Disk,
    Cdrom,
    Floppy,
    Lun,
    Other,
}

/// <summary>Where a disk's data comes from: <c>&lt;disk type=...&gt;</c>.</summary>
public enum DiskSourceType
{
    File,
    Block,
    Network,
    Volume,
    Dir,
    Nvme,
    VhostUser,
    Vhostvdpa,
    Other,
}

/// <summary>A TPM's <c>&lt;backend type=...&gt;</c>.</summary>
public enum TpmBackendType
{
    Emulator,
    Passthrough,
    External,
    Other,
}

/// <summary>One <c>devices/disk</c> of a domain.</summary>
/// <param name="Target">The target device name (<c>vda</c>), which names the disk in backup and checkpoint XML.</param>
/// <param name="SourcePath">The file, block device or directory behind the disk; null for network and empty drives.</param>
/// <param name="SourceProtocol">For network disks: <c>nbd</c>, <c>rbd</c>, <c>iscsi</c>...</param>
/// <param name="SourceName">For network disks: the image or export name; for volumes: <c>pool/volume</c>.</param>
/// <param name="Alias">The device alias in live XML (<c>virtio-disk0</c>).</param>
public sealed record DomainDisk(
    DiskDevice Device,
    DiskSourceType Type,
    string Target,
    string? Bus,
    string? DriverType,
    string? SourcePath,
    string? SourceProtocol,
    string? SourceName,
    bool ReadOnly,
    bool Shareable,
    string? Alias);

/// <summary>The firmware loader (<c>os/loader</c>).</summary>
public sealed record DomainLoader(string? Path, string? Type, bool ReadOnly, bool Secure);

/// <summary>The UEFI variable store (<c>os/nvram</c>), as a path in the text or a <c>&lt;source file=...&gt;</c>.</summary>
/// <param name="Path">The NVRAM file or block device; null when it is on the network or not yet assigned.</param>
/// <param name="Template">The variables template libvirt copies from when the file is missing.</param>
/// <param name="Type">The <c>type</c> attribute (<c>file</c>, <c>block</c>, <c>network</c>); <c>file</c> when absent.</param>
public sealed record DomainNvram(string? Path, string? Template, string Type);

/// <summary>A TPM device (<c>devices/tpm</c>).</summary>
/// <param name="Version"><c>2.0</c> or <c>1.2</c>; libvirt's default <c>2.0</c> when the XML has none.</param>
/// <param name="EncryptionSecret">The UUID of the libvirt secret that encrypts the swtpm state, if any.</param>
/// <param name="PersistentState">Whether <c>persistent_state='yes'</c> keeps the state of a transient domain.</param>
/// <param name="StateSourceType">A custom state location's type (<c>dir</c> or <c>file</c>) from <c>backend/source</c> (newer libvirt).</param>
/// <param name="StateSourcePath">A custom state location from <c>backend/source</c> (newer libvirt); null means the default.</param>
/// <param name="DevicePath">For passthrough, the host device; for external, the swtpm socket.</param>
public sealed record DomainTpm(
    string? Model,
    TpmBackendType Backend,
    string Version,
    string? EncryptionSecret,
    bool PersistentState,
    string? StateSourceType,
    string? StateSourcePath,
    string? DevicePath,
    string? Alias)
{
    /// <summary>Where libvirt keeps every domain's swtpm state by default.</summary>
    public const string DefaultStorageDirectory = "/var/lib/libvirt/swtpm";

    /// <summary>
    /// The directory swtpm keeps this TPM's state in (<c>--tpmstate dir=...</c>): a custom directory
    /// from the XML, else libvirt's default <c>/var/lib/libvirt/swtpm/UUID/tpm2</c> (TPM 2.0) or
    /// <c>.../tpm1.2</c> (TPM 1.2). Null for non-emulator backends and for a custom state file.
    /// </summary>
    public string? StateDirectory(string domainUuid, string storageDirectory = DefaultStorageDirectory)
    {
        if (Backend != TpmBackendType.Emulator)
        {
            return null;
        }

        if (StateSourcePath is not null)
        {
            return StateSourceType == "dir" ? StateSourcePath : null;
        }

        return $"{storageDirectory}/{domainUuid}/{(Version == "1.2" ? "tpm1.2" : "tpm2")}";
    }
}
