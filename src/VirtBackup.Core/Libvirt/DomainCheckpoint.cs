using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

/// <summary>One checkpoint of a domain (<c>virDomainCheckpointPtr</c>).</summary>
public sealed class DomainCheckpoint : IDisposable
{
    private readonly CheckpointHandle handle;
    private readonly string domainName;

    internal DomainCheckpoint(CheckpointHandle handle, string domainName)
    {
        this.handle = handle;
        this.domainName = domainName;
        Name = PeekString(LibvirtNative.virDomainCheckpointGetName(handle));
    }

    /// <summary>The checkpoint's name.</summary>
    public string Name { get; }

    /// <summary>The checkpoint's <c>&lt;domaincheckpoint&gt;</c> XML (<c>virDomainCheckpointGetXMLDesc</c>).</summary>
    public string GetXml(CheckpointXmlFlags flags = CheckpointXmlFlags.None) =>
        TakeString(LibvirtNative.virDomainCheckpointGetXMLDesc(handle, (uint)flags), "virDomainCheckpointGetXMLDesc", domainName);

    /// <summary>
    /// Deletes the checkpoint (<c>virDomainCheckpointDelete</c>): by default also its bitmaps, merging
    /// them into the parent's; with <see cref="CheckpointDeleteFlags.MetadataOnly"/> only libvirt's record.
    /// </summary>
    public void Delete(CheckpointDeleteFlags flags = CheckpointDeleteFlags.None) =>
        Check(LibvirtNative.virDomainCheckpointDelete(handle, (uint)flags), "virDomainCheckpointDelete", domainName);

    public override string ToString() => $"{domainName}/{Name}";

    public void Dispose() => handle.Dispose();
}
