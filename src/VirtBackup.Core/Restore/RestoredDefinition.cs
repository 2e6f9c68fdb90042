using System.Security.Cryptography;
using System.Xml;
using System.Xml.Linq;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>Where the restored domain's parts are, for its definition (paths as libvirt sees them).</summary>
/// <param name="NewIdentity">Restored with <c>--as</c>: new MAC addresses, excluded disks dropped.</param>
public sealed record RestoredIdentity(
    string Name,
    string Uuid,
    IReadOnlyDictionary<string, (string Path, DiskFormat Format)> Disks,
    string? NvramPath,
    bool NewIdentity);

/// <summary>
/// Rewrites the domain XML from a stream into the definition of the restored domain: its name and UUID, every
/// restored disk as a file at its restored path and format, the NVRAM at its restored path; without what only a
/// running domain has (id, aliases, runtime labels, vnet targets, autoport ports). With a new identity
/// (<c>--as</c>) every interface gets a new MAC address, so the copy can run next to the original, and disks
/// that were excluded from the backup are dropped (they would be shared with the original). The TPM state of an
/// emulated TPM always goes to libvirt's default place for the UUID, so a custom state location is dropped.
/// </summary>
public static class RestoredDefinition
{
    private static readonly XmlReaderSettings Safe = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        IgnoreWhitespace = true,
        XmlResolver = null,
        MaxCharactersInDocument = 16 * 1024 * 1024,
    };

    /// <summary>The restored definition. Throws <see cref="RestoreRefusedException"/> when the XML is not a domain.</summary>
    public static string Rewrite(string xml, RestoredIdentity identity, IReadOnlySet<string> excludedTargets)
    {
        var root = Parse(xml);
        root.Attribute("id")?.Remove();
        SetChild(root, "name", identity.Name);
        SetChild(root, "uuid", identity.Uuid);
        RemoveRuntimeDetails(root);
        var devices = root.Element("devices");
        if (devices is not null)
        {
            RewriteDisks(devices, identity, excludedTargets);
            RewriteInterfaces(devices, identity.NewIdentity);
            foreach (var source in devices.Elements("tpm").Elements("backend").Elements("source").ToList())
            {
                source.Remove();
            }
        }

        RewriteNvram(root, identity.NvramPath);
        return root.ToString(SaveOptions.None) + "\n";
    }

    /// <summary>A random MAC address in QEMU's locally administered 52:54:00 range.</summary>
    public static string NewMacAddress()
    {
        Span<byte> tail = stackalloc byte[3];
        RandomNumberGenerator.Fill(tail);
        return $"52:54:00:{tail[0]:x2}:{tail[1]:x2}:{tail[2]:x2}";
    }

    private static XElement Parse(string xml)
    {
        XElement root;
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), Safe);
            root = XElement.Load(reader);
        }
        catch (XmlException e)
        {
            throw new RestoreRefusedException($"the domain XML in the stream is not usable: {e.Message}", e);
        }

        if (root.Name != "domain")
        {
            throw new RestoreRefusedException($"the domain XML in the stream is a <{root.Name.LocalName}>, not a <domain>");
        }

        return root;
    }

    private static void RewriteDisks(XElement devices, RestoredIdentity identity, IReadOnlySet<string> excludedTargets)
    {
        foreach (var disk in devices.Elements("disk").ToList())
        {
            var target = (string?)disk.Element("target")?.Attribute("dev");
            if (target is null)
            {
                continue;
            }

            if (identity.Disks.TryGetValue(target, out var restored))
            {
                disk.SetAttributeValue("type", "file");
                disk.Elements("source").Remove();
                disk.Elements("backingStore").Remove();
                disk.Elements("mirror").Remove();
                var driver = disk.Element("driver");
                if (driver is null)
                {
                    driver = new XElement("driver", new XAttribute("name", "qemu"));
                    disk.AddFirst(driver);
                }

                driver.SetAttributeValue("type", restored.Format == DiskFormat.Qcow2 ? "qcow2" : "raw");
                driver.AddAfterSelf(new XElement("source", new XAttribute("file", restored.Path)));
            }
            else if (identity.NewIdentity && excludedTargets.Contains(target))
            {
                disk.Remove();
            }
        }
    }

    private static void RewriteInterfaces(XElement devices, bool newIdentity)
    {
        foreach (var nic in devices.Elements("interface"))
        {
            var target = nic.Element("target");
            var dev = (string?)target?.Attribute("dev");
            if (dev is not null && (dev.StartsWith("vnet", StringComparison.Ordinal) || dev.StartsWith("macvtap", StringComparison.Ordinal)))
            {
                target!.Remove();
            }

            if (newIdentity)
            {
                nic.Elements("mac").Remove();
                nic.AddFirst(new XElement("mac", new XAttribute("address", NewMacAddress())));
            }
        }
    }

    private static void RewriteNvram(XElement root, string? nvramPath)
    {
        var os = root.Element("os");
        var nvram = os?.Element("nvram");
        if (nvramPath is null || os is null)
        {
            return;
        }

        if (nvram is null)
        {
            // Firmware with a variable store but no <nvram> element: say where the restored one is.
            if (os.Element("loader") is null && (string?)os.Attribute("firmware") != "efi")
            {
                return;
            }

            nvram = new XElement("nvram");
            (os.Element("loader") ?? os.Elements().Last()).AddAfterSelf(nvram);
        }

        nvram.Attribute("type")?.Remove();
        nvram.RemoveNodes();
        nvram.Value = nvramPath;
    }

    /// <summary>Things only a running domain's XML has; none of them may pin the restored domain to the old one.</summary>
    private static void RemoveRuntimeDetails(XElement root)
    {
        foreach (var alias in root.Descendants("alias").Where(a => !((string?)a.Attribute("name") ?? "").StartsWith("ua-", StringComparison.Ordinal)).ToList())
        {
            alias.Remove();
        }

        foreach (var seclabel in root.Descendants("seclabel").Where(s => (string?)s.Attribute("type") == "dynamic"))
        {
            seclabel.Elements("label").Remove();
            seclabel.Elements("imagelabel").Remove();
        }

        foreach (var graphics in root.Descendants("graphics").Where(g => (string?)g.Attribute("autoport") == "yes"))
        {
            graphics.Attribute("port")?.Remove();
            graphics.Attribute("tlsPort")?.Remove();
            graphics.Attribute("websocket")?.Remove();
        }

        foreach (var source in root.Descendants("source"))
        {
            source.Attribute("index")?.Remove();
        }
    }

    private static void SetChild(XElement root, string name, string value)
    {
        var element = root.Element(name);
        if (element is null)
        {
            element = new XElement(name);
            if (root.Element("name") is { } first)
            {
                first.AddAfterSelf(element);
            }
            else
            {
                root.AddFirst(element);
            }
        }

        element.Value = value;
    }
}
