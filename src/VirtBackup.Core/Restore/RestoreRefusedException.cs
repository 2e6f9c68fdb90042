namespace VirtBackup.Core.Restore;

/// <summary>
/// The restore will not start (or will not continue) because it would clobber something or make no sense:
/// existing images, state files or a domain without <c>--force</c>, a running domain, a name that cannot be a
/// file name, an incremental stream that does not continue the restored chain, a domain to define whose disk
/// directory QEMU cannot reach. Nothing was changed.
/// </summary>
public sealed class RestoreRefusedException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}

/// <summary>Writing restored data to an image or state file failed (I/O error, full disk).</summary>
public sealed class RestoreWriteException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.DiskTransfer;
}
