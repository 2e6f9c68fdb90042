using System.Buffers;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// Buffered input from the transport: headers and small payloads are parsed out of one large pooled
/// buffer (few receive calls), large payloads (READ data) are received straight into their destination.
/// Only one reader (the handshake, then the reply loop) uses it at a time.
/// </summary>
internal sealed class NbdSocketReader : IDisposable
{
    public const int BufferSize = 256 * 1024;
    private const int DirectReceiveThreshold = 64 * 1024;

    private readonly NbdTransport _transport;
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _start;
    private int _end;

    public NbdSocketReader(NbdTransport transport) => _transport = transport;

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(NbdSocketReader));

    private int Buffered => _end - _start;

    /// <summary>Waits for the first byte of the next message; false when the peer closed the connection cleanly.</summary>
    public async ValueTask<bool> WaitForMessageAsync(CancellationToken ct)
    {
        if (Buffered > 0)
            return true;
        _start = _end = 0;
        var received = await _transport.ReceiveAsync(Buffer.AsMemory(), ct).ConfigureAwait(false);
        _end = received;
        return received > 0;
    }

    /// <summary>Returns the next <paramref name="count"/> bytes; the memory is valid until the next call.</summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadAsync(int count, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, BufferSize);
        if (Buffered < count)
            await FillAsync(count, ct).ConfigureAwait(false);
        var result = Buffer.AsMemory(_start, count);
        _start += count;
        return result;
    }

    /// <summary>Fills <paramref name="destination"/> completely, receiving large parts directly into it.</summary>
    public async ValueTask ReadExactlyAsync(Memory<byte> destination, CancellationToken ct)
    {
        while (!destination.IsEmpty)
        {
            if (Buffered > 0)
            {
                var n = Math.Min(Buffered, destination.Length);
                Buffer.AsSpan(_start, n).CopyTo(destination.Span);
                _start += n;
                destination = destination[n..];
            }
            else if (destination.Length >= DirectReceiveThreshold)
            {
                var received = await _transport.ReceiveAsync(destination, ct).ConfigureAwait(false);
                if (received == 0)
                    throw new NbdConnectionClosedException();
                destination = destination[received..];
            }
            else
            {
                await FillAsync(destination.Length, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Discards <paramref name="count"/> bytes (payload of an abandoned request).</summary>
    public async ValueTask SkipAsync(long count, CancellationToken ct)
    {
        while (count > 0)
        {
            if (Buffered == 0)
                await FillAsync((int)Math.Min(count, BufferSize), ct).ConfigureAwait(false);
            var n = (int)Math.Min(count, Buffered);
            _start += n;
            count -= n;
        }
    }

    private async ValueTask FillAsync(int count, CancellationToken ct)
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
            var received = await _transport.ReceiveAsync(buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (received == 0)
                throw new NbdConnectionClosedException();
            _end += received;
        }
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
            ArrayPool<byte>.Shared.Return(buffer);
    }
}

/// <summary>The peer closed the connection in the middle of a message.</summary>
internal sealed class NbdConnectionClosedException() : IOException("the connection was closed in the middle of a message");
