using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

/// <summary>One checkpoint of a domain (<c>virDomainCheckpointPtr</c>).</summary>
public sealed class DomainCheckpoint : IDisposable
{
    private readonly CheckpointHandle _handle;
    private readonly string _domainName;

    internal DomainCheckpoint(CheckpointHandle handle, string domainName)
    {
        _handle = handle;
        _domainName = domainName;
        Name = PeekString(LibvirtNative.virDomainCheckpointGetName(handle));
    }

    /// <summary>The checkpoint's name.</summary>
    public string Name { get; }

    /// <summary>The checkpoint's <c>&lt;domaincheckpoint&gt;</c> XML (<c>virDomainCheckpointGetXMLDesc</c>).</summary>
    public string GetXml(CheckpointXmlFlags flags = CheckpointXmlFlags.None) =>
        TakeString(LibvirtNative.virDomainCheckpointGetXMLDesc(_handle, (uint)flags), "virDomainCheckpointGetXMLDesc", _domainName);

    /// <summary>
    /// Deletes the checkpoint (<c>virDomainCheckpointDelete</c>): by default also its bitmaps, merging
    /// them into the parent's; with <see cref="CheckpointDeleteFlags.MetadataOnly"/> only libvirt's record.
    /// </summary>
    public void Delete(CheckpointDeleteFlags flags = CheckpointDeleteFlags.None) =>
        Check(LibvirtNative.virDomainCheckpointDelete(_handle, (uint)flags), "virDomainCheckpointDelete", _domainName);

    public override string ToString() => $"{_domainName}/{Name}";

    public void Dispose() => _handle.Dispose();
}
