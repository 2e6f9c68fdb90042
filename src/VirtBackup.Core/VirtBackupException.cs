namespace VirtBackup.Core;

/// <summary>
/// The root of every error VirtBackup raises on purpose. Each subclass lives next to the concept it
/// belongs to (NBD, stream format, libvirt, capture) and carries the context a user needs: the domain,
/// disk, offset or member, and what to do about it. The CLI maps <see cref="Category"/> to an exit code
/// in one place.
/// </summary>
public abstract class VirtBackupException : Exception
{
    protected VirtBackupException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    /// <summary>What kind of failure this is; decides the process exit code.</summary>
    public abstract ErrorCategory Category { get; }
}

/// <summary>Failure kinds, one per documented exit code.</summary>
public enum ErrorCategory
{
    Internal,
    Libvirt,
    Refused,
    DiskTransfer,
    InvalidStream,
    BrokenPipe,
    Interrupted,
}
