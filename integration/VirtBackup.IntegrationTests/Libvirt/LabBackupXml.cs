namespace VirtBackup.IntegrationTests.Libvirt;

/// <summary>Backup and checkpoint XML for lab VMs, as LAB.md shows them working.</summary>
internal static class LabBackupXml
{
    /// <summary>A pull-mode backup of all disks over the VM's unix socket, full or incremental from a checkpoint.</summary>
    public static string Pull(LabVm vm, string? incrementalFrom = null)
    {
        var incremental = incrementalFrom is null ? "" : $"<incremental>{incrementalFrom}</incremental>";
        var disks = string.Concat(vm.DiskTargets.Select(t =>
            $"<disk name='{t}' backup='yes' type='file'><scratch file='{vm.ScratchPath(t)}'/></disk>"));
        return $"<domainbackup mode='pull'>{incremental}<server transport='unix' socket='{vm.SocketPath()}'/><disks>{disks}</disks></domainbackup>";
    }

    /// <summary>A checkpoint with a bitmap on every disk.</summary>
    public static string Checkpoint(LabVm vm, string name)
    {
        var disks = string.Concat(vm.DiskTargets.Select(t => $"<disk name='{t}' checkpoint='bitmap'/>"));
        return $"<domaincheckpoint><name>{name}</name><disks>{disks}</disks></domaincheckpoint>";
    }
}
