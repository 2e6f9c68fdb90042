using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// One libvirt domain (<c>virDomainPtr</c>) with typed operations, split by concern into partial files:
/// state (<c>Domain.State.cs</c>), definition and lifecycle (<c>Domain.Lifecycle.cs</c>), backup jobs
/// (<c>Domain.Backup.cs</c>), checkpoints (<c>Domain.Checkpoints.cs</c>) and the guest agent / QEMU
/// monitor (<c>Domain.Guest.cs</c>). Every failure is a <see cref="LibvirtException"/> naming the call
/// and this domain. Calls are synchronous: each is one libvirt round trip, nothing more.
/// </summary>
public sealed partial class Domain : IDomain
{
    private readonly DomainHandle _handle;

    internal unsafe Domain(DomainHandle handle)
    {
        _handle = handle;

        // Both are read from the handle itself: no round trip to libvirtd.
        Name = PeekString(LibvirtNative.virDomainGetName(handle));
        var uuid = stackalloc byte[37]; // VIR_UUID_STRING_BUFLEN
        Check(LibvirtNative.virDomainGetUUIDString(handle, uuid), "virDomainGetUUIDString", Name);
        Uuid = new string((sbyte*)uuid);
    }

    /// <summary>The domain's name.</summary>
    public string Name { get; }

    /// <summary>The domain's UUID in canonical text form (lower-case, with dashes).</summary>
    public string Uuid { get; }

    public override string ToString() => $"{Name} ({Uuid})";

    public void Dispose() => _handle.Dispose();
}
