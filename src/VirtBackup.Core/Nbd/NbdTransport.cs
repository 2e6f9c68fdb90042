using System.Net;
using System.Net.Sockets;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// The byte pipe to the server: a connected unix-domain or TCP stream socket. Sends always complete
/// fully; receives return what the kernel has (the reader above buffers).
/// </summary>
internal sealed class NbdTransport : IDisposable
{
    private const int SocketBufferSize = 4 * 1024 * 1024;
    private readonly Socket _socket;
    private int _disposed;

    private NbdTransport(Socket socket) => _socket = socket;

    public static async Task<NbdTransport> ConnectAsync(NbdUri uri, CancellationToken ct)
    {
        Socket socket;
        EndPoint endPoint;
        if (uri.Transport == NbdTransportKind.Unix)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            endPoint = new UnixDomainSocketEndPoint(uri.SocketPath!);
        }
        else
        {
            endPoint = IPAddress.TryParse(uri.Host, out var address)
                ? new IPEndPoint(address, uri.Port)
                : new DnsEndPoint(uri.Host!, uri.Port);
            socket = address is null
                ? new Socket(SocketType.Stream, ProtocolType.Tcp)
                : new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.NoDelay = true;
        }

        try
        {
            TryEnlargeBuffers(socket);
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            return new NbdTransport(socket);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new NbdException($"NBD connect: cannot connect to {uri}: {e.Message}.", "connect", inner: e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void TryEnlargeBuffers(Socket socket)
    {
        // Larger kernel buffers mean fewer wake-ups when streaming megabytes; the kernel caps the value.
        try
        {
            socket.ReceiveBufferSize = SocketBufferSize;
            socket.SendBufferSize = SocketBufferSize;
        }
        catch (SocketException)
        {
            // Not fatal: the defaults work, just slower.
        }
    }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var sent = await _socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct) =>
        _socket.ReceiveAsync(buffer, SocketFlags.None, ct);

    /// <summary>Tells the server we will send nothing more (after NBD_CMD_DISC or NBD_OPT_ABORT).</summary>
    public void ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }

    /// <summary>Hard disconnect: pending receives and sends fail promptly.</summary>
    public void Abort()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _socket.Dispose();
    }
}
