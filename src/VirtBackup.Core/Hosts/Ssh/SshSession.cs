using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CliWrap;
using Serilog;
using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>How <see cref="SshSession"/> runs ssh; the defaults suit a backup.</summary>
public sealed record SshSessionOptions
{
    /// <summary>The OpenSSH client, by name (looked up in PATH) or path.</summary>
    public string SshExecutable { get; init; } = "ssh";

    /// <summary>ssh's ConnectTimeout (whole seconds) unless the target's options set one.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>ssh's ServerAliveInterval (whole seconds; 3 missed answers end the connection) unless the
    /// target's options set one: a dead host fails the transfer instead of hanging it.</summary>
    public TimeSpan ServerAliveInterval { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>What a remote command produced.</summary>
public sealed record SshCommandResult(int ExitCode, byte[] StandardOutput, string StandardError);

/// <summary>
/// One authenticated, multiplexed OpenSSH connection to a remote hypervisor. <see cref="ConnectAsync"/>
/// starts the master (ControlMaster, ControlPersist, BatchMode) and returns once it is authenticated, so
/// everything later (commands, file transfers, socket forwards) rides the existing connection without
/// another handshake: connect before the VM is paused. The control socket lives in a private 0700
/// directory; <see cref="DisposeAsync"/> cancels the forwards, stops the master and removes it.
/// </summary>
public sealed partial class SshSession : IAsyncDisposable
{
    /// <summary>Concurrent commands on the one connection; sshd's MaxSessions defaults to 10.</summary>
    private const int MaxConcurrentCommands = 8;

    private readonly SshSessionOptions _options;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _commandSlots = new(MaxConcurrentCommands, MaxConcurrentCommands);
    private readonly Lock _forwardsLock = new();
    private readonly Dictionary<string, string> _forwards = new(StringComparer.Ordinal);
    private int _forwardCount;
    private int _disposed;

    private SshSession(SshTarget target, SshSessionOptions options, ILogger log, string directory, string remoteUser, string hostName, string display)
    {
        Target = target;
        HostName = hostName;
        _options = options;
        _log = log;
        PrivateDirectory = directory;
        ControlPath = Path.Combine(directory, "ctl");
        RemoteUser = remoteUser;
        Display = display;
    }

    public SshTarget Target { get; }

    /// <summary>The host name or address ssh connects to (after ~/.ssh/config: an alias's HostName).</summary>
    public string HostName { get; }

    /// <summary>The effective <c>user@host:port</c> (after ~/.ssh/config), for messages.</summary>
    public string Display { get; }

    /// <summary>The user the remote commands run as.</summary>
    public string RemoteUser { get; }

    /// <summary>How long connecting and authenticating took.</summary>
    public TimeSpan ConnectTime { get; private set; }

    /// <summary>The private 0700 directory holding the control socket and the forwarded sockets.</summary>
    internal string PrivateDirectory { get; }

    internal string ControlPath { get; }

    /// <summary>The backgrounded master ssh process, as <c>ssh -O check</c> reports it.</summary>
    internal int? MasterProcessId { get; private set; }

    /// <summary>
    /// Connects and authenticates to <paramref name="target"/>; returns when commands can run.
    /// </summary>
    /// <exception cref="RemoteException">ssh cannot connect or authenticate (the message is ssh's),
    /// or the ssh options are invalid.</exception>
    public static async Task<SshSession> ConnectAsync(
        SshTarget target,
        SshSessionOptions? options = null,
        ILogger? log = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new SshSessionOptions();
        log ??= Serilog.Core.Logger.None;
        var stopwatch = Stopwatch.StartNew();

        // 1. What ssh will actually use (aliases, User and Port from ~/.ssh/config); checks the options.
        var resolved = await RunProcessAsync(
            options.SshExecutable, target.ToString(), "connect", [.. target.ConnectionArguments(), "-G", "--", target.Host], null, cancellationToken);
        if (resolved.ExitCode != 0)
        {
            throw ConnectFailed(target.ToString(), resolved.ExitCode, resolved.StandardError);
        }

        var config = ParseConfig(Encoding.UTF8.GetString(resolved.StandardOutput));
        var user = config.GetValueOrDefault("user", target.User ?? Environment.UserName);
        var hostName = config.GetValueOrDefault("hostname", target.Host);
        var port = config.GetValueOrDefault("port", target.Port?.ToString(CultureInfo.InvariantCulture) ?? "22");
        var display = $"{user}@{(hostName.Contains(':') ? $"[{hostName}]" : hostName)}:{port}";

        await SweepOrphansAsync(options.SshExecutable, log, PrivateRoot(), cancellationToken);
        var directory = CreatePrivateDirectory();
        var session = new SshSession(target, options, log, directory, user, hostName, display);
        try
        {
            await session.StartMasterAsync(cancellationToken);
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }

        session.ConnectTime = stopwatch.Elapsed;
        log.Debug(
            "ssh: connected to {Host} in {Milliseconds:F0} ms (master pid {Pid}, control socket {ControlPath})",
            display,
            session.ConnectTime.TotalMilliseconds,
            session.MasterProcessId,
            session.ControlPath);
        return session;
    }

    private async Task StartMasterAsync(CancellationToken cancellationToken)
    {
        // Our own options come first: for ssh the first value of an option wins, so these cannot be
        // overridden by the target's options or ~/.ssh/config; the timeouts after them are defaults.
        string[] arguments =
        [
            "-o", "ControlMaster=yes",
            "-o", "ControlPath=" + ControlPath,
            "-o", "ControlPersist=yes",
            "-o", "BatchMode=yes",
            "-o", "StreamLocalBindMask=0177",
            "-o", "StreamLocalBindUnlink=yes",
            "-E", Path.Combine(PrivateDirectory, "master.log"),
            "-N", "-T",
            .. Target.ConnectionArguments(),
            "-o", "ConnectTimeout=" + Seconds(_options.ConnectTimeout),
            "-o", "ServerAliveInterval=" + Seconds(_options.ServerAliveInterval),
            "-o", "ServerAliveCountMax=3",
            "--", Target.Host,
        ];

        // With ControlPersist the foreground ssh exits 0 once the master is authenticated and listening,
        // the master forks into the background with its standard streams on /dev/null. Its messages go to
        // the -E log (so a -v in the options cannot keep our stderr pipe open).
        SshCommandResult result;
        try
        {
            result = await RunProcessAsync(_options.SshExecutable, Display, "connect", arguments, null, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The master may have forked just before the kill.
            await TryControlAsync("exit", CancellationToken.None);
            throw;
        }

        if (result.ExitCode != 0)
        {
            var logText = ReadMasterLog();
            throw ConnectFailed(Display, result.ExitCode, logText + "\n" + result.StandardError);
        }

        var check = await ControlAsync("check", cancellationToken);
        if (check.ExitCode != 0)
        {
            throw ConnectFailed(Display, check.ExitCode, ReadMasterLog() + "\n" + check.StandardError);
        }

        var pid = MasterPidPattern().Match(check.StandardError);
        MasterProcessId = pid.Success ? int.Parse(pid.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>
    /// Runs <paramref name="command"/> on the remote host (given to the remote user's shell as one
    /// string, like <c>ssh host command</c>; quote words with <see cref="ShellQuote"/>) over the master
    /// connection and returns its standard output exactly.
    /// </summary>
    /// <param name="standardInput">Bytes for the command's standard input; none: an empty input.</param>
    /// <param name="operation">What this is, for the error message (default: the command).</param>
    /// <exception cref="RemoteException">The command exits non-zero, or the connection is gone.</exception>
    public async Task<byte[]> RunAsync(
        string command,
        ReadOnlyMemory<byte>? standardInput = null,
        string? operation = null,
        CancellationToken cancellationToken = default)
    {
        var result = await ExecuteAsync(command, standardInput, operation, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(Display, operation ?? Describe(command), result.ExitCode, result.StandardError);
        }

        return result.StandardOutput;
    }

    /// <summary>
    /// Like <see cref="RunAsync"/> but a non-zero exit code of the remote command is returned, not
    /// thrown. A lost connection still throws.
    /// </summary>
    public async Task<SshCommandResult> ExecuteAsync(
        string command,
        ReadOnlyMemory<byte>? standardInput = null,
        string? operation = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        operation ??= Describe(command);
        await _commandSlots.WaitAsync(cancellationToken);
        try
        {
            var started = Stopwatch.GetTimestamp();
            var result = await RunProcessAsync(
                _options.SshExecutable, Display, operation, [.. ClientArguments(), "-T", "--", Target.Host, command], standardInput, cancellationToken);
            _log.Debug("ssh: {Operation} on {Host}: exit {ExitCode} in {Milliseconds:F0} ms", operation, Display, result.ExitCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (result.ExitCode == 255)
            {
                await ThrowIfMasterGoneAsync(operation, result);
            }

            return result;
        }
        finally
        {
            _commandSlots.Release();
        }
    }

    /// <summary>
    /// Makes <paramref name="remoteSocketPath"/> (a unix socket on the remote host, e.g. a backup job's
    /// NBD socket) reachable at the returned local unix socket path (mode 0600, in the session's private
    /// directory) through the master connection. The remote socket need not exist yet: each local
    /// connection opens its own channel. Cancelled by <see cref="CancelForwardAsync"/> or on dispose.
    /// </summary>
    public async Task<string> ForwardUnixSocketAsync(string remoteSocketPath, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var remote = ForwardField(remoteSocketPath);
        var local = Path.Combine(PrivateDirectory, $"fwd-{Interlocked.Increment(ref _forwardCount)}.sock");
        var spec = $"{local}:{remote}";
        var result = await ControlAsync("forward", cancellationToken, "-L", spec);
        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(Display, $"forward the unix socket '{remoteSocketPath}'", result.ExitCode, result.StandardError);
        }

        lock (_forwardsLock)
        {
            _forwards[local] = spec;
        }

        _log.Debug("ssh: forwarding {Local} to {Host}:{Remote}", local, Display, remoteSocketPath);
        return local;
    }

    /// <summary>Stops forwarding <paramref name="localSocketPath"/> and removes it; unknown paths are ignored.</summary>
    public async Task CancelForwardAsync(string localSocketPath, CancellationToken cancellationToken = default)
    {
        string? spec;
        lock (_forwardsLock)
        {
            if (_forwards.Remove(localSocketPath, out spec) is false)
            {
                return;
            }
        }

        var result = await ControlAsync("cancel", cancellationToken, "-L", spec);
        File.Delete(localSocketPath); // ssh leaves the socket file behind.
        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(Display, $"cancel the forward of '{localSocketPath}'", result.ExitCode, result.StandardError);
        }
    }

    /// <summary>Round trip to the master without touching the remote host (the pure multiplexing cost).</summary>
    public async Task<TimeSpan> CheckAsync(CancellationToken cancellationToken = default)
    {
        var stopwatch = Stopwatch.StartNew();
        var result = await ControlAsync("check", cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new RemoteException(Display, "check the connection", result.ExitCode, RemoteException.Clean(result.StandardError),
                $"the SSH connection to {Display} is gone: {RemoteException.Clean(result.StandardError)}");
        }

        return stopwatch.Elapsed;
    }

    /// <summary>
    /// What the master ssh logged so far (its -E file): e.g. "channel 3: open failed: connect failed: ..."
    /// when the remote end of a forward refused a connection. For error messages; empty if nothing.
    /// </summary>
    public string ReadConnectionLog() => ReadMasterLog().Trim();

    /// <summary>Cancels the forwards, stops the master connection and removes the private directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        if (File.Exists(ControlPath) || Directory.Exists(PrivateDirectory))
        {
            KeyValuePair<string, string>[] open;
            lock (_forwardsLock)
            {
                open = [.. _forwards];
                _forwards.Clear();
            }

            foreach (var (local, spec) in open)
            {
                await TryControlAsync("cancel", timeout.Token, "-L", spec);
            }

            if (File.Exists(ControlPath))
            {
                await TryControlAsync("exit", timeout.Token);
            }

            // "-O exit" only asks; wait (briefly) until the master is really gone.
            if (MasterProcessId is { } pid)
            {
                var deadline = Stopwatch.StartNew();
                while (IsRunningSsh(pid) && deadline.Elapsed < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(10, CancellationToken.None);
                }
            }

            try
            {
                Directory.Delete(PrivateDirectory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.Warning("ssh: cannot remove {Directory}: {Message}", PrivateDirectory, e.Message);
            }
        }

        _commandSlots.Dispose();
        _log.Debug("ssh: disconnected from {Host}", Display);
    }

    /// <summary>Arguments of an ssh that only talks to our master: never a connection of its own (if the
    /// master is gone, the ProxyCommand fails at once), no configuration files (nothing in ~/.ssh/config
    /// can change what the command does).</summary>
    private string[] ClientArguments() =>
    [
        "-F", "none",
        "-S", ControlPath,
        "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false",
        "-o", "BatchMode=yes",
    ];

    private Task<SshCommandResult> ControlAsync(string controlCommand, CancellationToken cancellationToken, params string[] extra) =>
        RunProcessAsync(
            _options.SshExecutable,
            Display,
            $"ssh -O {controlCommand}",
            [.. ClientArguments(), "-O", controlCommand, .. extra, "--", Target.Host],
            null,
            cancellationToken);

    private async Task TryControlAsync(string controlCommand, CancellationToken cancellationToken, params string[] extra)
    {
        try
        {
            var result = await ControlAsync(controlCommand, cancellationToken, extra);
            if (result.ExitCode != 0)
            {
                _log.Debug("ssh -O {Command} for {Host}: {Error}", controlCommand, Display, RemoteException.Clean(result.StandardError));
            }
        }
        catch (Exception e) when (e is RemoteException or OperationCanceledException)
        {
            _log.Debug("ssh -O {Command} for {Host}: {Error}", controlCommand, Display, e.Message);
        }
    }

    private async Task ThrowIfMasterGoneAsync(string operation, SshCommandResult result)
    {
        // 255 is ssh's own failure, or a remote command that exited 255: tell them apart by the master.
        var check = await ControlAsync("check", CancellationToken.None);
        if (check.ExitCode != 0)
        {
            var text = RemoteException.Clean(ReadMasterLog());
            throw new RemoteException(
                Display,
                operation,
                result.ExitCode,
                text,
                $"{operation} on {Display}: the SSH connection is gone{(text.Length > 0 ? ": " + text : string.Empty)}");
        }
    }

    private string ReadMasterLog()
    {
        try
        {
            return File.ReadAllText(Path.Combine(PrivateDirectory, "master.log"));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static async Task<SshCommandResult> RunProcessAsync(
        string executable,
        string host,
        string operation,
        IReadOnlyList<string> arguments,
        ReadOnlyMemory<byte>? standardInput,
        CancellationToken cancellationToken)
    {
        var stdout = new MemoryStream();
        var stderr = new StringBuilder();
        var command = Cli.Wrap(executable)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToStream(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr));
        if (standardInput is { } input)
        {
            command = command.WithStandardInputPipe(PipeSource.FromBytes(input));
        }

        try
        {
            var result = await command.ExecuteAsync(cancellationToken);
            return new SshCommandResult(result.ExitCode, stdout.ToArray(), stderr.ToString());
        }
        catch (Win32Exception e)
        {
            throw new RemoteException(host, operation, null, e.Message, $"{operation} on {host}: cannot run '{executable}': {e.Message}", e);
        }
    }

    private static RemoteException ConnectFailed(string host, int exitCode, string standardError)
    {
        var lines = RemoteException.Clean(standardError)
            .Split("; ")
            .Select(line => SshPrefixPattern().Replace(line, string.Empty))
            .Distinct(StringComparer.Ordinal);
        var text = string.Join("; ", lines);
        return new RemoteException(
            host,
            "connect",
            exitCode,
            text,
            $"cannot connect to {host}: {(text.Length > 0 ? text : $"ssh exited with code {exitCode}")}");
    }

    private static Dictionary<string, string> ParseConfig(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0)
            {
                values.TryAdd(line[..space], line[(space + 1)..].Trim());
            }
        }

        return values;
    }

    /// <summary>A path as one field of an ssh forward spec: absolute, and bracketed when it has a ':'.</summary>
    private static string ForwardField(string path)
    {
        if (!path.StartsWith('/') || path.Any(c => c is '\0' or '\n'))
        {
            throw new ArgumentException($"'{path}' is not an absolute unix socket path", nameof(path));
        }

        if (!path.Contains(':'))
        {
            return path;
        }

        return path.Contains(']')
            ? throw new ArgumentException($"ssh cannot forward '{path}': it has both ':' and ']'", nameof(path))
            : $"[{path}]";
    }

    private static string Describe(string command) =>
        "run '" + (command.Length > 80 ? command[..80] + "…" : command) + "'";

    private static string Seconds(TimeSpan span) =>
        Math.Max(1, (int)Math.Ceiling(span.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether <paramref name="pid"/> is a live ssh process (not a zombie, not a recycled pid).</summary>
    internal static bool IsRunningSsh(int pid)
    {
        try
        {
            // A zombie or a recycled pid is not our master.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat.Contains("(ssh)", StringComparison.Ordinal) && !stat.Contains(") Z ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>A new directory only this user can enter, with a short, plain path (unix socket paths are
    /// limited to 107 bytes, and ssh appends 17 characters to the control path while binding).</summary>
    private static string CreatePrivateDirectory() =>
        Posix.CreateTemporaryDirectory(Path.Combine(PrivateRoot(), $"vbssh-{Environment.ProcessId}-"));

    [GeneratedRegex(@"pid=(\d+)")]
    private static partial Regex MasterPidPattern();

    /// <summary>"ssh: " and "user@host: " in front of ssh's messages: the message names the host already.</summary>
    [GeneratedRegex(@"^(ssh: |\S+@\S+: )")]
    private static partial Regex SshPrefixPattern();
}
