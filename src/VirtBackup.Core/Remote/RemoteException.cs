namespace VirtBackup.Core.Remote;

/// <summary>
/// Reaching or using a remote hypervisor over SSH failed: the connection, the authentication, or a
/// remote command. Names the host and the operation, and carries ssh's exit code and error text.
/// </summary>
public sealed class RemoteException : VirtBackupException
{
    public RemoteException(string host, string operation, int? exitCode, string standardError, string message, Exception? inner = null)
        : base(message, inner)
    {
        Host = host;
        Operation = operation;
        ExitCode = exitCode;
        StandardError = standardError;
    }

    /// <summary>The remote host as <c>user@host:port</c> (or as given, when ssh could not resolve it).</summary>
    public string Host { get; }

    /// <summary>What was being done, e.g. "connect", "read file '/var/lib/libvirt/qemu/nvram/vm_VARS.fd'".</summary>
    public string Operation { get; }

    /// <summary>The exit code of ssh (the remote command's, or 255 for an SSH error); null when ssh did not run to the end.</summary>
    public int? ExitCode { get; }

    /// <summary>ssh's and the remote command's error output, trimmed.</summary>
    public string StandardError { get; }

    /// <summary>Nothing was done to the VM yet, or the remote side refused: the run is refused.</summary>
    public override ErrorCategory Category => ErrorCategory.Refused;

    internal static RemoteException CommandFailed(string host, string operation, int exitCode, string standardError)
    {
        var text = Clean(standardError);
        var reason = exitCode == 255
            ? $"ssh failed (exit code 255)"
            : $"the remote command failed (exit code {exitCode})";
        return new RemoteException(
            host,
            operation,
            exitCode,
            text,
            $"{operation} on {host}: {reason}{(text.Length > 0 ? ": " + text : string.Empty)}");
    }

    /// <summary>Error output as one line: without ssh's debug chatter, its lines joined with "; ".</summary>
    internal static string Clean(string standardError) =>
        string.Join(
            "; ",
            standardError
                .Split('\n')
                .Select(line => line.Trim())
                .Where(line => line.Length > 0
                               && !line.StartsWith("debug", StringComparison.Ordinal)
                               && !line.StartsWith("Warning: Permanently added", StringComparison.Ordinal)
                               && !line.StartsWith("Pseudo-terminal will not be allocated", StringComparison.Ordinal)));
}
