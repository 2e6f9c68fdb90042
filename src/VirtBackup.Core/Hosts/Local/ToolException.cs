namespace VirtBackup.Core.Hosts.Local;

/// <summary>An external program on this machine (qemu-img, qemu-nbd) failed; carries its command line and stderr.</summary>
public sealed class ToolException(string message, Exception? inner = null)
    : HostException(ThisHost, "run a disk image tool", message, inner, ErrorCategory.DiskTransfer);
