using System.Xml.Linq;

namespace VirtBackup.Core.Capture;

/// <summary>One disk of a pull-mode backup job.</summary>
/// <param name="Target">The disk's target dev (vda).</param>
/// <param name="ScratchFile">Where QEMU keeps copy-before-write data while the job runs.</param>
/// <param name="Bitmaps">Whether the disk can carry dirty bitmaps (qcow2); a raw disk is always copied whole.</param>
public sealed record BackupJobDisk(string Target, string ScratchFile, bool Bitmaps);

/// <summary>
/// Where the pull-mode job's NBD server listens: a unix socket, or a TCP address and port on the host, with TLS when
/// <see cref="Tls"/> (libvirt then uses the host's backup_tls_x509_cert_dir).
/// </summary>
public sealed record JobServer(string? SocketPath, string? Name, int Port)
{
    /// <summary>TCP only: QEMU's NBD server requires TLS (tls='yes').</summary>
    public bool Tls { get; init; }

    public static JobServer Unix(string socketPath) => new(socketPath, null, 0);

    public static JobServer Tcp(string name, int port, bool tls = false) => new(null, name, port) { Tls = tls };

    /// <summary>Whether the running job that <paramref name="backupXml"/> (virDomainBackupGetXMLDesc) describes listens here.</summary>
    public bool Serves(string backupXml)
    {
        var server = XDocument.Parse(backupXml).Root?.Element("server");
        return server is not null && (SocketPath is not null
            ? (string?)server.Attribute("socket") == SocketPath
            : (string?)server.Attribute("transport") == "tcp" && (string?)server.Attribute("port") == Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    internal XElement ToXml() => SocketPath is not null
        ? new XElement("server", new XAttribute("transport", "unix"), new XAttribute("socket", SocketPath))
        : new XElement("server",
            new XAttribute("transport", "tcp"),
            Tls ? new XAttribute("tls", "yes") : null,
            new XAttribute("name", Name!),
            new XAttribute("port", Port));
}

/// <summary>
/// Builds the &lt;domainbackup&gt; and &lt;domaincheckpoint&gt; documents (libvirt formatbackup and
/// formatcheckpoint) for a pull-mode job over a unix socket.
/// </summary>
public static class BackupJobXml
{
    /// <param name="incrementalFrom">The checkpoint whose changes an incremental carries; null for a full copy.</param>
    /// <param name="excluded">Disks of the domain that take no part (backup='no').</param>
    public static string Backup(
        string socketPath,
        IReadOnlyList<BackupJobDisk> disks,
        IReadOnlyList<string> excluded,
        string? incrementalFrom) =>
        Backup(JobServer.Unix(socketPath), disks, excluded, incrementalFrom);

    /// <param name="server">Where QEMU's NBD server listens for the job.</param>
    public static string Backup(
        JobServer server,
        IReadOnlyList<BackupJobDisk> disks,
        IReadOnlyList<string> excluded,
        string? incrementalFrom)
    {
        var root = new XElement("domainbackup", new XAttribute("mode", "pull"));
        if (incrementalFrom is not null)
        {
            root.Add(new XElement("incremental", incrementalFrom));
        }

        root.Add(server.ToXml());
        var list = new XElement("disks");
        foreach (var disk in disks)
        {
            var element = new XElement(
                "disk",
                new XAttribute("name", disk.Target),
                new XAttribute("backup", "yes"),
                new XAttribute("type", "file"));
            if (incrementalFrom is not null && !disk.Bitmaps)
            {
                // A disk without bitmaps cannot be incremental: copy it whole inside the incremental job.
                element.Add(new XAttribute("backupmode", "full"));
            }

            element.Add(new XElement("scratch", new XAttribute("file", disk.ScratchFile)));
            list.Add(element);
        }

        foreach (var target in excluded)
        {
            list.Add(new XElement("disk", new XAttribute("name", target), new XAttribute("backup", "no")));
        }

        root.Add(list);
        return root.ToString(SaveOptions.DisableFormatting);
    }

    public static string Checkpoint(string name, IReadOnlyList<BackupJobDisk> disks, IReadOnlyList<string> excluded)
    {
        var list = new XElement("disks");
        foreach (var disk in disks)
        {
            list.Add(new XElement(
                "disk",
                new XAttribute("name", disk.Target),
                new XAttribute("checkpoint", disk.Bitmaps ? "bitmap" : "no")));
        }

        foreach (var target in excluded)
        {
            list.Add(new XElement("disk", new XAttribute("name", target), new XAttribute("checkpoint", "no")));
        }

        return new XElement("domaincheckpoint", new XElement("name", name), list).ToString(SaveOptions.DisableFormatting);
    }
}
