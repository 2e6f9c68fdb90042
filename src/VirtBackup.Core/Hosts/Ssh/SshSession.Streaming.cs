using CliWrap;

namespace VirtBackup.Core.Hosts.Ssh;

public sealed partial class SshSession
{
    /// <summary>
    /// An ssh command that runs <paramref name="command"/> (given to the remote user's shell as one
    /// string; quote words with <see cref="ShellQuote"/>) over the master connection, for a caller that
    /// wires the standard streams itself: a remote process that keeps running while we talk to it
    /// (<see cref="RemoteProcess"/>). It takes none of the command slots; sshd's MaxSessions still counts it.
    /// </summary>
    internal Command StreamingCommand(string command)
    {
        ArgumentNullException.ThrowIfNull(command);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return Cli.Wrap(_options.SshExecutable)
            .WithArguments([.. ClientArguments(), "-T", "--", Target.Host, command])
            .WithValidation(CommandResultValidation.None);
    }
}
