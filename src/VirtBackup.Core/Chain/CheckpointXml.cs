using System.Globalization;
using System.Xml.Linq;

namespace VirtBackup.Core.Chain;

/// <summary>
/// The &lt;domaincheckpoint&gt; document that redefines a checkpoint whose bitmaps virtbackup made itself in the
/// images of a shut-off domain: what libvirt's checkpoint dumpxml gives (name, parent, creation time, every disk with
/// its bitmap or checkpoint='no'), without the embedded domain.
/// </summary>
public static class CheckpointXml
{
    /// <param name="bitmapTargets">Disks that carry the checkpoint's bitmap (named like the checkpoint).</param>
    /// <param name="otherTargets">The domain's other disks (raw, excluded): checkpoint='no'.</param>
    public static string Redefinition(
        string name,
        string? parent,
        DateTimeOffset created,
        IReadOnlyList<string> bitmapTargets,
        IReadOnlyList<string> otherTargets)
    {
        var root = new XElement("domaincheckpoint", new XElement("name", name));
        if (parent is not null)
        {
            root.Add(new XElement("parent", new XElement("name", parent)));
        }

        root.Add(new XElement("creationTime", created.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));
        var disks = new XElement("disks");
        foreach (var target in bitmapTargets.Concat(otherTargets).Order(StringComparer.Ordinal))
        {
            disks.Add(bitmapTargets.Contains(target)
                ? new XElement("disk", new XAttribute("name", target), new XAttribute("checkpoint", "bitmap"), new XAttribute("bitmap", name))
                : new XElement("disk", new XAttribute("name", target), new XAttribute("checkpoint", "no")));
        }

        root.Add(disks);
        return root.ToString(SaveOptions.DisableFormatting);
    }
}
