namespace VirtBackup.Core;

/// <summary>
/// The root of every error VirtBackup raises on purpose. Each subclass lives next to the concept it
/// belongs to (NBD, stream format, libvirt, capture) and carries the context a user needs: the domain,
/// disk, offset or member, and what to do about it. The CLI maps subclasses to exit codes in one place.
/// </summary>
public abstract class VirtBackupException : Exception
{
    protected VirtBackupException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
