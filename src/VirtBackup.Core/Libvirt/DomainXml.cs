using System.Xml;
using System.Xml.Linq;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// The parts of a libvirt domain XML VirtBackup needs: identity, disks, firmware (loader, NVRAM) and
/// TPM. Pure: <see cref="Parse"/> reads text and touches nothing else. Works on live and inactive XML
/// (live XML adds aliases and the NVRAM path libvirt picked).
/// </summary>
public sealed record DomainXml(
    string Name,
    string Uuid,
    IReadOnlyList<DomainDisk> Disks,
    DomainLoader? Loader,
    DomainNvram? Nvram,
    DomainTpm? Tpm)
{
    /// <summary>
    /// The uid and gid the running QEMU process has (live XML's <c>&lt;seclabel model='dac'&gt;&lt;label&gt;+UID:+GID</c>),
    /// or null when the XML does not say (inactive XML, another security model).
    /// </summary>
    public (int Uid, int Gid)? QemuProcessIds { get; init; }

    /// <summary>The NVRAM file's path, if the domain has one on a file or block device.</summary>
    public string? NvramPath => Nvram?.Path;

    /// <summary>The swtpm state directory of an emulated TPM (see <see cref="DomainTpm.StateDirectory"/>).</summary>
    public string? TpmStateDirectory => Tpm?.StateDirectory(Uuid);

    /// <summary>The disk with target <paramref name="target"/> (<c>vda</c>), or null.</summary>
    public DomainDisk? FindDisk(string target) => Disks.FirstOrDefault(d => d.Target == target);

    /// <summary>Parses domain XML. Malformed XML or a domain without name or UUID is <see cref="InvalidDataException"/>.</summary>
    public static DomainXml Parse(string xml)
    {
        XElement root;
        try
        {
            root = XElement.Parse(xml);
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"The domain XML is not well-formed: {e.Message}", e);
        }

        if (root.Name != "domain")
        {
            throw new InvalidDataException($"Expected a <domain> document, found <{root.Name.LocalName}>.");
        }

        var name = Text(root.Element("name")) ?? throw new InvalidDataException("The domain XML has no <name>.");
        var uuid = Text(root.Element("uuid")) ?? throw new InvalidDataException($"The domain XML of '{name}' has no <uuid>.");
        var os = root.Element("os");
        var devices = root.Element("devices");
        return new DomainXml(
            name,
            uuid.ToLowerInvariant(),
            devices?.Elements("disk").Select(d => ParseDisk(d, name)).ToArray() ?? [],
            ParseLoader(os?.Element("loader")),
            ParseNvram(os?.Element("nvram")),
            ParseTpm(devices?.Element("tpm")))
        {
            QemuProcessIds = ParseDacLabel(root),
        };
    }

    private static (int Uid, int Gid)? ParseDacLabel(XElement root)
    {
        var label = root.Elements("seclabel")
            .Where(s => (string?)s.Attribute("model") == "dac")
            .Select(s => Text(s.Element("label")))
            .FirstOrDefault(l => l is not null);
        var parts = label?.Split(':');
        return parts is [var uid, var gid]
            && int.TryParse(uid.TrimStart('+'), out var u)
            && int.TryParse(gid.TrimStart('+'), out var g)
                ? (u, g)
                : null;
    }

    private static DomainDisk ParseDisk(XElement disk, string domainName)
    {
        var target = Attr(disk.Element("target"), "dev")
                     ?? throw new InvalidDataException($"A disk of domain '{domainName}' has no <target dev=...>.");
        var type = ParseSourceType(Attr(disk, "type"));
        var source = disk.Element("source");
        var path = type switch
        {
            DiskSourceType.File => Attr(source, "file"),
            DiskSourceType.Block => Attr(source, "dev"),
            DiskSourceType.Dir => Attr(source, "dir"),
            _ => null,
        };
        var sourceName = type == DiskSourceType.Volume && source is not null
            ? $"{Attr(source, "pool")}/{Attr(source, "volume")}"
            : Attr(source, "name");
        return new DomainDisk(
            ParseDevice(Attr(disk, "device")),
            type,
            target,
            Attr(disk.Element("target"), "bus"),
            Attr(disk.Element("driver"), "type"),
            path,
            Attr(source, "protocol"),
            sourceName,
            disk.Element("readonly") is not null,
            disk.Element("shareable") is not null,
            Attr(disk.Element("alias"), "name"));
    }

    private static DomainLoader? ParseLoader(XElement? loader) => loader is null
        ? null
        : new DomainLoader(Text(loader), Attr(loader, "type"), Attr(loader, "readonly") == "yes", Attr(loader, "secure") == "yes");

    private static DomainNvram? ParseNvram(XElement? nvram)
    {
        if (nvram is null)
        {
            return null;
        }

        // libvirt 8.5+ also writes <nvram type='file'><source file='...'/></nvram>.
        var source = nvram.Element("source");
        var path = source is null ? Text(nvram) : Attr(source, "file") ?? Attr(source, "dev");
        return new DomainNvram(path, Attr(nvram, "template"), Attr(nvram, "type") ?? "file");
    }

    private static DomainTpm? ParseTpm(XElement? tpm)
    {
        var backend = tpm?.Element("backend");
        if (tpm is null || backend is null)
        {
            return null;
        }

        var backendType = Attr(backend, "type") switch
        {
            "emulator" => TpmBackendType.Emulator,
            "passthrough" => TpmBackendType.Passthrough,
            "external" => TpmBackendType.External,
            _ => TpmBackendType.Other,
        };
        var source = backend.Element("source");
        var device = backendType switch
        {
            TpmBackendType.Passthrough => Attr(backend.Element("device"), "path"),
            TpmBackendType.External => Attr(source, "path"),
            _ => null,
        };
        var customState = backendType == TpmBackendType.Emulator ? source : null;
        return new DomainTpm(
            Attr(tpm, "model"),
            backendType,
            Attr(backend, "version") ?? "2.0",
            Attr(backend.Element("encryption"), "secret"),
            Attr(backend, "persistent_state") == "yes",
            Attr(customState, "type"),
            Attr(customState, "path"),
            device,
            Attr(tpm.Element("alias"), "name"));
    }

    private static DiskDevice ParseDevice(string? device) => device switch
    {
        null or "disk" => DiskDevice.Disk,
        "cdrom" => DiskDevice.Cdrom,
        "floppy" => DiskDevice.Floppy,
        "lun" => DiskDevice.Lun,
        _ => DiskDevice.Other,
    };

    private static DiskSourceType ParseSourceType(string? type) => type switch
    {
        null or "file" => DiskSourceType.File,
        "block" => DiskSourceType.Block,
        "network" => DiskSourceType.Network,
        "volume" => DiskSourceType.Volume,
        "dir" => DiskSourceType.Dir,
        "nvme" => DiskSourceType.Nvme,
        "vhostuser" => DiskSourceType.VhostUser,
        "vhostvdpa" => DiskSourceType.Vhostvdpa,
        _ => DiskSourceType.Other,
    };

    private static string? Attr(XElement? element, string name) => element?.Attribute(name)?.Value;

    private static string? Text(XElement? element)
    {
        var text = element?.Value.Trim();
        return string.IsNullOrEmpty(text) ? null : text;
    }
}
