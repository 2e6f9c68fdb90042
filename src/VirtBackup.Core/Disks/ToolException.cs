namespace VirtBackup.Core.Disks;

/// <summary>An external program (qemu-img, qemu-nbd) failed; carries its command line and stderr.</summary>
public sealed class ToolException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.DiskTransfer;
}
