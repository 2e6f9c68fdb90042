using System.Xml.Linq;
using VirtBackup.Core.Restore;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>How the booted copy is set apart from the original.</summary>
/// <param name="KeepNetwork">Keep the interfaces (with new MACs); otherwise every &lt;interface&gt; is removed.</param>
/// <param name="SerialLog">verify --boot: the serial console goes to this file (replacing serial/console devices); otherwise
/// only a console that logged to a file logs to the layout's serial log instead.</param>
/// <param name="EnsureDisplay">verify --boot: add a VNC display on 127.0.0.1 and a video device when there is none (screenshots).</param>
public sealed record BootIsolation(bool KeepNetwork, string? SerialLog = null, bool EnsureDisplay = false);

/// <summary>
/// The definition of a domain booted from a backup: restore's definition (new name, UUID, MACs, NVRAM path,
/// disks as files) with each served disk a qcow2 overlay whose backing store is that disk's NBD export on the
/// serve socket, read and write errors pausing the guest (<c>error_policy</c>/<c>rerror_policy='stop'</c>: a dead
/// server never shows the guest wrong data), and the isolation asked for. Not <c>served</c>: the same definition with
/// the disks as the plain local images they are after a live restore (no backing store, the original's error policy).
/// </summary>
public static class BootDefinition
{
    public static string Build(BootState state, BootLayout layout, IReadOnlyList<string> servedTargets, BootIsolation isolation, bool served = true)
    {
        var manifest = state.Manifest;
        var restored = RestoredDefinition.Rewrite(
            state.DomainXml,
            new RestoredIdentity(
                layout.Name,
                layout.Uuid,
                servedTargets.ToDictionary(t => t, t => (layout.OverlayPath(t), DiskFormat.Qcow2), StringComparer.Ordinal),
                state.Nvram is null ? null : layout.NvramPath,
                NewIdentity: true),
            manifest.Disks.Where(d => d.Excluded).Select(d => d.Target).ToHashSet(StringComparer.Ordinal));
        var root = XElement.Parse(restored);
        var devices = root.Element("devices") ?? throw new RestoreRefusedException("the domain XML in the stream has no <devices>");
        foreach (var disk in devices.Elements("disk"))
        {
            var target = (string?)disk.Element("target")?.Attribute("dev");
            if (!served || target is null || !servedTargets.Contains(target))
            {
                continue;
            }

            var driver = disk.Element("driver")!;
            driver.SetAttributeValue("error_policy", "stop");
            driver.SetAttributeValue("rerror_policy", "stop");
            disk.Element("source")!.AddAfterSelf(new XElement("backingStore",
                new XAttribute("type", "network"),
                new XElement("format", new XAttribute("type", "raw")),
                new XElement("source", new XAttribute("protocol", "nbd"), new XAttribute("name", target),
                    new XElement("host", new XAttribute("transport", "unix"), new XAttribute("socket", layout.SocketPath)))));
        }

        if (!isolation.KeepNetwork)
        {
            devices.Elements("interface").Remove();
        }

        if (isolation.SerialLog is null)
        {
            // A file console of the original would be opened twice (libvirt refuses: busy): the copy logs to its own.
            foreach (var source in devices.Elements().Where(e => e.Name == "serial" || e.Name == "console")
                .Where(e => (string?)e.Attribute("type") == "file").Elements("source"))
            {
                source.SetAttributeValue("path", layout.SerialLogPath);
            }
        }
        else
        {
            var log = isolation.SerialLog;
            devices.Elements("serial").Remove();
            devices.Elements("console").Remove();
            devices.Add(new XElement("serial", new XAttribute("type", "file"),
                new XElement("source", new XAttribute("path", log)),
                new XElement("target", new XAttribute("port", "0"))));
        }

        if (isolation.EnsureDisplay)
        {
            if (!devices.Elements("graphics").Any())
            {
                devices.Add(new XElement("graphics", new XAttribute("type", "vnc"), new XAttribute("autoport", "yes"), new XAttribute("listen", "127.0.0.1")));
            }

            if (!devices.Elements("video").Any())
            {
                devices.Add(new XElement("video", new XElement("model", new XAttribute("type", "vga"))));
            }
        }

        return root.ToString(SaveOptions.None) + "\n";
    }

    /// <summary>Whether the definition has a guest agent channel (verify --boot asks the agent then).</summary>
    public static bool HasAgentChannel(string xml) =>
        XElement.Parse(xml).Element("devices")?.Elements("channel").Elements("target")
            .Any(t => (string?)t.Attribute("name") == "org.qemu.guest_agent.0") == true;
}
