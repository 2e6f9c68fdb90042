using System.Net.Sockets;
using Serilog;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// A read-only NBD server: accepts connections on a unix socket or TCP and runs one <see cref="NbdServerSession"/>
/// per client, each on its own. A client that misbehaves or vanishes ends only its own connection; more than
/// <see cref="NbdServerLimits.MaxConnections"/> at once are closed as they arrive.
/// </summary>
internal sealed class NbdServer : IAsyncDisposable
{
    /// <summary>The kernel send buffer of each connection: four 256 KiB replies (what nbdcopy and QEMU ask for) fit in it.</summary>
    private const int SendBufferBytes = 1024 * 1024;

    private readonly Socket _listener;
    private readonly IReadOnlyList<INbdExport> _exports;
    private readonly NbdServerLimits _limits;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<NbdServerSession, Task> _sessions = [];
    private readonly string? _socketPath;
    private Task _accepting = Task.CompletedTask;
    private int _disposed;

    private NbdServer(Socket listener, string? socketPath, IReadOnlyList<INbdExport> exports, NbdServerLimits limits, ILogger log)
    {
        _listener = listener;
        _socketPath = socketPath;
        _exports = exports;
        _limits = limits;
        _log = log;
    }

    public System.Net.EndPoint? LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>Binds and listens; the socket file (mode 0600) is refused if something exists at its path.</summary>
    public static NbdServer Listen(ServeEndpoint endpoint, IReadOnlyList<INbdExport> exports, NbdServerLimits limits, ILogger log)
    {
        Socket listener;
        if (endpoint.SocketPath is { } path)
        {
            if (File.Exists(path) || Directory.Exists(path))
            {
                throw new ServeRefusedException($"'{path}' exists: remove it (a socket left by a killed server?) or choose another --socket path");
            }

            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(path));
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
            {
                listener.Dispose();
                throw new ServeRefusedException($"cannot listen on '{path}': {e.Message}", e);
            }
        }
        else
        {
            listener = new Socket(endpoint.Tcp!.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                listener.Bind(endpoint.Tcp);
            }
            catch (SocketException e)
            {
                listener.Dispose();
                throw new ServeRefusedException($"cannot listen on {endpoint.Tcp}: {e.Message}", e);
            }
        }

        listener.Listen(512);
        var server = new NbdServer(listener, endpoint.SocketPath, exports, limits, log);
        server._accepting = server.AcceptAsync();
        return server;
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                _log.Warning("accepting an NBD connection failed: {Message}", e.Message);
                continue;
            }

            lock (_sessions)
            {
                if (_sessions.Count >= _limits.MaxConnections)
                {
                    _log.Warning("refusing an NBD connection: {Count} are open already", _sessions.Count);
                    client.Dispose();
                    continue;
                }

                if (client.AddressFamily != AddressFamily.Unix)
                {
                    client.NoDelay = true;
                }

                // Room for several whole read replies in the kernel: a reply is written without waiting for the
                // client to drain the last one (fewer wake-ups on both sides); capped by net.core.wmem_max.
                client.SendBufferSize = SendBufferBytes;

                var session = new NbdServerSession(client, _exports, _limits, _log);
                _sessions[session] = Task.Run(() => ServeAsync(session));
            }
        }
    }

    private async Task ServeAsync(NbdServerSession session)
    {
        try
        {
            await session.RunAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A client that misbehaved, vanished or was cut off by shutdown: its connection ends, the server goes on.
            _log.Debug("NBD connection ended: {Message}", e.Message);
        }
        finally
        {
            await session.DisposeAsync().ConfigureAwait(false);
            lock (_sessions)
            {
                _sessions.Remove(session);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        Task[] running;
        lock (_sessions)
        {
            running = [.. _sessions.Values];
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        if (_socketPath is not null)
        {
            File.Delete(_socketPath);
        }

        _stopping.Dispose();
    }
}

/// <summary>The server cannot start (socket path taken, address in use, stream file unreadable).</summary>
public sealed class ServeRefusedException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
