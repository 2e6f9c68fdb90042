using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>The names of the domain's checkpoints (<c>virDomainListAllCheckpoints</c>), parents first by default.</summary>
    public unsafe IReadOnlyList<string> ListCheckpoints(CheckpointListFlags flags = CheckpointListFlags.Topological)
    {
        var count = Check(LibvirtNative.virDomainListAllCheckpoints(_handle, out var checkpoints, (uint)flags),
            "virDomainListAllCheckpoints", Name);
        return TakeNames(checkpoints, count, &LibvirtNative.virDomainCheckpointGetName, &LibvirtNative.virDomainCheckpointFree);
    }

    /// <summary>
    /// Creates a checkpoint from <c>&lt;domaincheckpoint&gt;</c> XML (<c>virDomainCheckpointCreateXML</c>), or with
    /// <see cref="CheckpointCreateFlags.Redefine"/> restores the metadata of one whose bitmaps exist.
    /// </summary>
    public DomainCheckpoint CheckpointCreateXml(string xml, CheckpointCreateFlags flags = CheckpointCreateFlags.None) =>
        new(Check(LibvirtNative.virDomainCheckpointCreateXML(_handle, xml, (uint)flags), "virDomainCheckpointCreateXML", Name), Name);

    void IDomain.CheckpointCreate(string xml, CheckpointCreateFlags flags) => CheckpointCreateXml(xml, flags).Dispose();

    /// <summary>The checkpoint called <paramref name="name"/>, or <see cref="CheckpointNotFoundException"/>.</summary>
    public DomainCheckpoint CheckpointLookupByName(string name) =>
        new(Check(LibvirtNative.virDomainCheckpointLookupByName(_handle, name, 0), "virDomainCheckpointLookupByName", Name), Name);

    /// <summary>The XML of the checkpoint called <paramref name="name"/>.</summary>
    public string CheckpointGetXml(string name, CheckpointXmlFlags flags = CheckpointXmlFlags.None)
    {
        using var checkpoint = CheckpointLookupByName(name);
        return checkpoint.GetXml(flags);
    }

    /// <summary>Deletes the checkpoint called <paramref name="name"/> (see <see cref="DomainCheckpoint.Delete"/>).</summary>
    public void CheckpointDelete(string name, CheckpointDeleteFlags flags = CheckpointDeleteFlags.None)
    {
        using var checkpoint = CheckpointLookupByName(name);
        checkpoint.Delete(flags);
    }
}
