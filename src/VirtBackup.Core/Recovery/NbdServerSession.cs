using System.Buffers.Binary;
using System.Net.Sockets;
using Serilog;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// One client connection of the <see cref="NbdServer"/>: the handshake (<c>.Handshake.cs</c>), option haggling
/// (<c>.Options.cs</c>) and transmission (<c>.Transmission.cs</c>). Whatever the client does, the session ends in
/// an NBD error or a closed connection, never in an exception that reaches the server.
/// </summary>
internal sealed partial class NbdServerSession(Socket socket, IReadOnlyList<INbdExport> exports, NbdServerLimits limits, ILogger log)
    : IAsyncDisposable
{
    private readonly NetworkStream _stream = new(socket, ownsSocket: true);
    private BufferedStream? _input;
    private readonly CancellationTokenSource _closed = new();

    public async Task RunAsync(CancellationToken serverStopping)
    {
        using var stopping = serverStopping.UnsafeRegister(static s => ((NbdServerSession)s!).Close(), this);
        INbdExport? export;
        using (var deadline = new CancellationTokenSource(limits.HandshakeTimeout))
        using (deadline.Token.UnsafeRegister(static s => ((NbdServerSession)s!).Close(), this))
        {
            export = await NegotiateAsync().ConfigureAwait(false);
        }

        if (export is not null)
        {
            await TransmitAsync(export).ConfigureAwait(false);
        }
    }

    /// <summary>Hangs up: every pending read or write on the socket fails at once.</summary>
    public void Close()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Closed already.
        }

        socket.Close();
    }

    private async Task<bool> ReadExactlyAsync(Memory<byte> into)
    {
        try
        {
            // Buffered: pipelined 28-byte requests arrive many to one receive.
            _input ??= new BufferedStream(_stream, 64 * 1024);
            await _input.ReadExactlyAsync(into, _closed.Token).ConfigureAwait(false);
            return true;
        }
        catch (EndOfStreamException)
        {
            return false;
        }
    }

    private async Task<uint?> ReadUInt32Async()
    {
        var bytes = new byte[4];
        return await ReadExactlyAsync(bytes).ConfigureAwait(false) ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : null;
    }

    private INbdExport? FindExport(string name) =>
        name.Length == 0 ? exports.FirstOrDefault() : exports.FirstOrDefault(e => e.Name == name);

    public async ValueTask DisposeAsync()
    {
        Close();
        await _stream.DisposeAsync().ConfigureAwait(false);
        _closed.Dispose();
    }
}

/// <summary>What the server accepts from one client.</summary>
public sealed record NbdServerLimits
{
    public static NbdServerLimits Default { get; } = new();

    /// <summary>Connections served at once; more are closed right after accept.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>A client must reach transmission within this time.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests of one connection being answered at once (pipelining); further requests wait to be read.</summary>
    public int RequestsInFlight { get; init; } = 64;

    /// <summary>Largest READ the server answers (advertised as the maximum block size); larger ones get EINVAL.</summary>
    public uint MaxRead { get; init; } = 32 * 1024 * 1024;
}
