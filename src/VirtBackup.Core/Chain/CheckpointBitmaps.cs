using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Chain;

/// <summary>Picks the way to a domain's checkpoints from its state now.</summary>
public static class CheckpointBitmaps
{
    /// <summary>
    /// <see cref="LiveCheckpoints"/> for a running domain; for a shut-off one <see cref="OfflineCheckpoints"/> over every
    /// local-file qcow2 disk of its definition (libvirt deletes no checkpoint of an inactive domain).
    /// </summary>
    public static ICheckpointBitmaps For(Domain domain, IHostImages images, ILogger log)
    {
        if (domain.IsActive())
        {
            return new LiveCheckpoints(domain);
        }

        var xml = DomainXml.Parse(domain.GetXml(DomainXmlFlags.Inactive));
        var qcow2 = xml.Disks
            .Where(d => d.Device == DiskDevice.Disk && d.Type == DiskSourceType.File && d.DriverType == "qcow2" && d.SourcePath is not null)
            .ToList();
        return new OfflineCheckpoints(domain, images, qcow2, log);
    }
}
