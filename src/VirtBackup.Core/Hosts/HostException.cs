namespace VirtBackup.Core.Hosts;

/// <summary>
/// An operation on the hypervisor host failed: a file, a state tree, an image tool, a directory, reaching the host.
/// The one failure type of the host layer, here and over SSH alike, so that callers catch one thing: the local
/// implementation maps its <see cref="IOException"/> and <see cref="UnauthorizedAccessException"/> to it, and the
/// SSH one's <see cref="Ssh.RemoteException"/> and the local tools' <see cref="Local.ToolException"/> derive from it.
/// </summary>
public class HostException : VirtBackupException
{
    public HostException(string host, string operation, string message, Exception? inner = null, ErrorCategory category = ErrorCategory.Refused)
        : base(message, inner)
    {
        Host = host;
        Operation = operation;
        Category = category;
    }

    /// <summary>"this host", or the remote host as <c>user@host:port</c>.</summary>
    public string Host { get; }

    /// <summary>What was being done, e.g. "read file '/var/lib/libvirt/qemu/nvram/vm_VARS.fd'".</summary>
    public string Operation { get; }

    /// <summary>Refused unless said otherwise: the host did not let the run do what it needed.</summary>
    public override ErrorCategory Category { get; }

    /// <summary>The host layer's failure for an I/O error of this process on this machine.</summary>
    public static HostException OnThisHost(string operation, Exception error) =>
        new(ThisHost, operation, $"{operation} on this host: {error.Message}", error);

    /// <summary>Whether <paramref name="error"/> is what a file operation (or starting a tool) on this machine throws when it fails.</summary>
    public static bool IsLocalIoError(Exception error) =>
        error is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception;

    /// <summary>How the local host names itself in messages.</summary>
    public const string ThisHost = "this host";
}
