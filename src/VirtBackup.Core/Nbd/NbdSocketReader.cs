using System.Buffers;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// Buffered input from the transport: headers and small payloads are parsed out of one large pooled
/// buffer (few receive calls), large payloads (READ data) are received straight into their destination.
/// Only one thread (the handshake, then the reply thread) uses it at a time.
/// </summary>
internal sealed class NbdSocketReader(NbdTransport transport) : IDisposable
{
    public const int BufferSize = 256 * 1024;
    private const int DirectReceiveThreshold = 64 * 1024;

    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _start;
    private int _end;

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(NbdSocketReader));

    private int Buffered => _end - _start;

    /// <summary>Waits for the first byte of the next message; false when the peer closed the connection cleanly.</summary>
    public bool WaitForMessage()
    {
        if (Buffered > 0)
        {
            return true;
        }

        _start = 0;
        _end = transport.Receive(Buffer);
        return _end > 0;
    }

    /// <summary>Returns the next <paramref name="count"/> bytes; the span is valid until the next call.</summary>
    public ReadOnlySpan<byte> Read(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, BufferSize);
        if (Buffered < count)
        {
            Fill(count);
        }

        var result = Buffer.AsSpan(_start, count);
        _start += count;
        return result;
    }

    /// <summary>Fills <paramref name="destination"/> completely, receiving large parts directly into it.</summary>
    public void ReadExactly(Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            if (Buffered > 0)
            {
                var n = Math.Min(Buffered, destination.Length);
                Buffer.AsSpan(_start, n).CopyTo(destination);
                _start += n;
                destination = destination[n..];
            }
            else if (destination.Length >= DirectReceiveThreshold)
            {
                var received = transport.Receive(destination);
                if (received == 0)
                {
                    throw new NbdConnectionClosedException();
                }

                destination = destination[received..];
            }
            else
            {
                Fill(destination.Length);
            }
        }
    }

    /// <summary>Discards <paramref name="count"/> bytes (payload of an abandoned request).</summary>
    public void Skip(long count)
    {
        while (count > 0)
        {
            if (Buffered == 0)
            {
                Fill((int)Math.Min(count, BufferSize));
            }

            var n = (int)Math.Min(count, Buffered);
            _start += n;
            count -= n;
        }
    }

    private void Fill(int count)
    {
        var buffer = Buffer;
        if (Buffered == 0)
        {
            _start = _end = 0;
        }
        else if (buffer.Length - _start < count)
        {
            System.Buffer.BlockCopy(buffer, _start, buffer, 0, Buffered);
            _end -= _start;
            _start = 0;
        }

        while (Buffered < count)
        {
            var received = transport.Receive(buffer.AsSpan(_end));
            if (received == 0)
            {
                throw new NbdConnectionClosedException();
            }

            _end += received;
        }
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>The peer closed the connection in the middle of a message.</summary>
internal sealed class NbdConnectionClosedException() : IOException("the connection was closed in the middle of a message");
