using System.Net;
using System.Net.Sockets;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// The byte pipe to the server: a unix-domain or TCP stream socket used only with blocking calls.
/// The socket is never put into .NET's async mode, so a receive is one plain recv() on the reply thread:
/// measurably faster for streaming than epoll-driven async receives (see <see cref="NbdClient"/>).
/// A TLS connection (<see cref="StartTls"/>) goes through an <see cref="System.Net.Security.SslStream"/>, also blocking;
/// a plain one never touches a stream. Blocked calls are released by <see cref="Abort"/> or <see cref="Dispose"/> from another thread.
/// </summary>
internal sealed partial class NbdTransport : IDisposable
{
    private const int SocketBufferSize = 4 * 1024 * 1024;
    private readonly Socket _socket;
    private readonly NbdUri _uri;
    private int _disposed;

    private NbdTransport(Socket socket, NbdUri uri)
    {
        _socket = socket;
        _uri = uri;
    }

    /// <summary>Creates the (unconnected) socket for <paramref name="uri"/>.</summary>
    public static NbdTransport Create(NbdUri uri)
    {
        var socket = uri.Transport == NbdTransportKind.Unix
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : IPAddress.TryParse(uri.Host, out var address)
                ? new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
        if (uri.Transport == NbdTransportKind.Tcp)
        {
            socket.NoDelay = true;
        }

        TryEnlargeBuffers(socket);
        return new NbdTransport(socket, uri);
    }

    /// <summary>Connects (blocking); failures become an <see cref="NbdException"/> naming the address.</summary>
    public void Connect()
    {
        try
        {
            if (_uri.Transport == NbdTransportKind.Unix)
            {
                _socket.Connect(new UnixDomainSocketEndPoint(_uri.SocketPath!));
            }
            else if (IPAddress.TryParse(_uri.Host, out var address))
            {
                _socket.Connect(new IPEndPoint(address, _uri.Port));
            }
            else
            {
                _socket.Connect(_uri.Host!, _uri.Port);
            }
        }
        catch (SocketException e)
        {
            throw new NbdException($"NBD connect: cannot connect to {_uri}: {e.Message}.", "connect", inner: e);
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

    public void Send(ReadOnlySpan<byte> data)
    {
        if (_tls is not null)
        {
            _tls.Write(data);
            return;
        }

        while (!data.IsEmpty)
        {
            data = data[_socket.Send(data)..];
        }
    }

    /// <summary>Receives what is available (at least one byte); 0 when the peer closed the connection.</summary>
    public int Receive(Span<byte> buffer) => _tls is null ? _socket.Receive(buffer) : _tls.Read(buffer);

    /// <summary>Tells the server we will send nothing more (after NBD_CMD_DISC or NBD_OPT_ABORT).</summary>
    public void ShutdownSend() => Shutdown(SocketShutdown.Send);

    /// <summary>Hard disconnect: blocked receives return 0 and sends fail, promptly.</summary>
    public void Abort() => Shutdown(SocketShutdown.Both);

    private void Shutdown(SocketShutdown how)
    {
        try
        {
            _socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Not connected or already gone.
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _tls?.Dispose();
            _socket.Dispose();
        }
    }
}
