namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// Reaching or using a remote hypervisor over SSH failed: the connection, the authentication, or a
/// remote command. Names the host and the operation, and carries ssh's exit code and error text.
/// </summary>
public sealed class RemoteException : HostException
{
    public RemoteException(string host, string operation, int? exitCode, string standardError, string message, Exception? inner = null)
        : base(host, operation, message, inner)
    {
        ExitCode = exitCode;
        StandardError = standardError;
    }

    /// <summary>The exit code of ssh (the remote command's, or 255 for an SSH error); null when ssh did not run to the end.</summary>
    public int? ExitCode { get; }

    /// <summary>ssh's and the remote command's error output, trimmed.</summary>
    public string StandardError { get; }

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
