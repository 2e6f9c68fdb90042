using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Backup;

/// <summary>Which of a domain's disks a backup carries, in deterministic (target) order.</summary>
public sealed record DiskSelection(IReadOnlyList<DomainDisk> Included, IReadOnlyList<DomainDisk> Excluded)
{
    /// <summary>Disks (not cdrom/floppy) minus <paramref name="exclude"/>; unknown names are an error.</summary>
    public static DiskSelection Of(DomainXml xml, IReadOnlyList<string> exclude)
    {
        var disks = xml.Disks.Where(d => d.Device == DiskDevice.Disk).OrderBy(d => d.Target, StringComparer.Ordinal).ToList();
        var unknown = exclude.Where(t => disks.All(d => d.Target != t)).ToList();
        if (unknown.Count > 0)
        {
            throw new BackupRefusedException(
                $"--exclude-disk names {string.Join(",", unknown)}, but '{xml.Name}' has the disks {string.Join(",", disks.Select(d => d.Target))}");
        }

        var included = disks.Where(d => !exclude.Contains(d.Target)).ToList();
        foreach (var disk in included)
        {
            if (disk.Type is not (DiskSourceType.File or DiskSourceType.Block) || disk.DriverType is not ("qcow2" or "raw"))
            {
                throw new BackupRefusedException(
                    $"disk {disk.Target} of '{xml.Name}' is a {disk.Type} {disk.DriverType ?? "?"} disk; VirtBackup backs up qcow2 and raw file or block disks. Exclude it with --exclude-disk {disk.Target}");
            }
        }

        if (included.Count == 0)
        {
            throw new BackupRefusedException($"'{xml.Name}' has no disk left to back up");
        }

        return new DiskSelection(included, disks.Where(d => exclude.Contains(d.Target)).ToList());
    }

    /// <summary>The disks that carry dirty bitmaps (checkpoints, incrementals).</summary>
    public IReadOnlyList<string> BitmapTargets => Included.Where(d => d.DriverType == "qcow2").Select(d => d.Target).ToList();
}

/// <summary>The backup cannot start as asked; nothing was touched.</summary>
public sealed class BackupRefusedException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
