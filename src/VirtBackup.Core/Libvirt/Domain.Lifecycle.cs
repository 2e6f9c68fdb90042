using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>The domain XML (<c>virDomainGetXMLDesc</c>): live by default, or the inactive definition.</summary>
    public string GetXml(DomainXmlFlags flags = DomainXmlFlags.None) =>
        TakeString(LibvirtNative.virDomainGetXMLDesc(_handle, (uint)flags), "virDomainGetXMLDesc", Name);

    /// <summary>Starts the defined domain (<c>virDomainCreateWithFlags</c>).</summary>
    public void Start(DomainStartFlags flags = DomainStartFlags.None) =>
        Check(LibvirtNative.virDomainCreateWithFlags(_handle, (uint)flags), "virDomainCreateWithFlags", Name);

    /// <summary>Stops the domain at once, like pulling the plug (<c>virDomainDestroy</c>).</summary>
    public void Destroy() => Check(LibvirtNative.virDomainDestroy(_handle), "virDomainDestroy", Name);

    /// <summary>
    /// Removes the persistent definition (<c>virDomainUndefineFlags</c>). A UEFI domain needs
    /// <see cref="DomainUndefineFlags.Nvram"/> or <see cref="DomainUndefineFlags.KeepNvram"/>;
    /// <see cref="DomainUndefineFlags.CheckpointsMetadata"/> only works on an inactive domain.
    /// </summary>
    public void Undefine(DomainUndefineFlags flags = DomainUndefineFlags.None) =>
        Check(LibvirtNative.virDomainUndefineFlags(_handle, (uint)flags), "virDomainUndefineFlags", Name);
}
