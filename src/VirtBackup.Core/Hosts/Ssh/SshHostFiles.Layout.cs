using System.Globalization;
using System.Text;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>The directory operations the restore needs, each one remote <c>/bin/sh</c> script.</summary>
public sealed partial class SshHostFiles
{
    /// <summary>$1 = path. "d|f SIZE SECONDS.FRACTION" (symlinks followed); exit 3 when nothing is there.</summary>
    private static readonly string StatScript = RemoteScripts.Load("stat.sh");

    /// <summary>$1 = path, $2 = umask giving the mode. Creates it and its missing parents.</summary>
    private static readonly string CreateDirectoryScript = RemoteScripts.Load("create-directory.sh");

    /// <summary>$1 = parent, $2 = name prefix. Prints the new 0700 directory.</summary>
    private static readonly string CreatePrivateDirectoryScript = RemoteScripts.Load("create-private-directory.sh");

    private static readonly string MoveScript = RemoteScripts.Load("move.sh");

    private static readonly string SyncScript = RemoteScripts.Load("sync.sh");

    public async Task<HostFileStatus?> StatAsync(string path, CancellationToken cancellationToken)
    {
        var operation = $"look at '{path}'";
        var result = await Session.ExecuteAsync(ShellQuote.ShScript(StatScript, HostPaths.Absolute(path, nameof(path))), null, operation, cancellationToken);
        if (result.ExitCode == Missing)
        {
            return null;
        }

        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(Session.Display, operation, result.ExitCode, result.StandardError);
        }

        var text = Encoding.ASCII.GetString(result.StandardOutput).Trim();
        return ParseStatus(text) ?? throw new RemoteException(
            Session.Display, operation, 0, string.Empty, $"{operation} on {Session.Display}: unexpected answer '{text}'");
    }

    public Task CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        HostPaths.Octal(mode, nameof(mode));
        var mask = HostPaths.Octal(~mode & (UnixFileMode)0b111_111_111);
        return Session.RunAsync(
            ShellQuote.ShScript(CreateDirectoryScript, HostPaths.Absolute(path, nameof(path)), mask), null, $"create the directory '{path}'", cancellationToken);
    }

    public async Task<string> CreatePrivateDirectoryAsync(string parent, string prefix, CancellationToken cancellationToken)
    {
        if (prefix.Length == 0 || prefix.Contains('/') || prefix.Any(c => c is '\0' or '\n'))
        {
            throw new ArgumentException($"'{prefix}' is not a file name prefix", nameof(prefix));
        }

        var output = await Session.RunAsync(
            ShellQuote.ShScript(CreatePrivateDirectoryScript, HostPaths.Absolute(parent, nameof(parent)), prefix),
            null,
            $"create a directory in '{parent}'",
            cancellationToken);
        var path = Encoding.UTF8.GetString(output).TrimEnd('\n');
        return path.StartsWith(parent.TrimEnd('/') + "/" + prefix, StringComparison.Ordinal)
            ? path
            : throw new RemoteException(Session.Display, $"create a directory in '{parent}'", 0, string.Empty,
                $"create a directory in '{parent}' on {Session.Display}: unexpected answer '{path}'");
    }

    public Task MoveAsync(string source, string destination, CancellationToken cancellationToken) =>
        Session.RunAsync(
            ShellQuote.ShScript(MoveScript, HostPaths.Absolute(source, nameof(source)), HostPaths.Absolute(destination, nameof(destination))),
            null,
            $"rename '{source}' to '{destination}'",
            cancellationToken);

    public Task SyncAsync(string path, CancellationToken cancellationToken) =>
        Session.RunAsync(ShellQuote.ShScript(SyncScript, HostPaths.Absolute(path, nameof(path))), null, $"sync '{path}'", cancellationToken);

    /// <summary>"f 123 1700000000.1234567890" as a status; the time truncated to 100 ns like .NET's.</summary>
    internal static HostFileStatus? ParseStatus(string text)
    {
        var fields = text.Split(' ');
        if (fields.Length != 3 || fields[0] is not ("d" or "f")
            || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            return null;
        }

        var time = fields[2].Split('.');
        var fraction = time.Length > 1 ? time[1] : string.Empty;
        if (time.Length > 2
            || !long.TryParse(time[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds)
            || !fraction.All(char.IsAsciiDigit))
        {
            return null;
        }

        var hundredNanoseconds = long.Parse(fraction.PadRight(7, '0')[..7], NumberStyles.None, CultureInfo.InvariantCulture);
        var ticks = DateTime.UnixEpoch.Ticks + seconds * TimeSpan.TicksPerSecond + hundredNanoseconds;
        return new HostFileStatus(fields[0] == "d", fields[0] == "d" ? 0 : size, ticks);
    }
}
