using VirtBackup.Core.Hosts;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Restore;

/// <summary>
/// An image served by a writable <c>qemu-nbd</c> (qcow2, a qcow2 overlay on any base, or raw on a remote host; over
/// an SSH forward when the host is remote) and written with the native NBD client.
/// <list type="bullet">
/// <item>Data is copied into one ring buffer of <see cref="BufferSize"/> bytes, where contiguous writes join into one
/// request of up to <see cref="MaxWrite"/> bytes (a packed member's segments that touch, an extent cut across
/// members); a request leaves when the next write is not contiguous. Its bytes stay in the ring until the server
/// answers, so the caller may reuse its buffer at once, and the ring bounds the bytes in flight.</item>
/// <item>Up to <see cref="MaxRequests"/> requests are in flight: decoding the next members overlaps writing these,
/// and many small writes do not wait for each other's round trips.</item>
/// <item>Zero ranges are WRITE_ZEROES without NO_HOLE, which qemu turns into unallocated or zero clusters; on a new
/// image (no backing file) they need no request at all, since it already reads as zeros everywhere.</item>
/// </list>
/// </summary>
internal sealed class NbdImageWriter : IImageWriter
{
    private const int BufferSize = 16 << 20;
    private const int MaxWrite = 4 << 20;
    private const int MaxRequests = 64;
    private const int ConnectAttempts = 40;

    private readonly IServedImage _server;
    private readonly NbdClient _client;
    private readonly bool _readsAsZeros;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BufferSize);
    private readonly Queue<(Task Request, int Bytes)> _pending = new();
    private int _used;
    private int _head;
    private Run _run;
    private bool _closed;

    private NbdImageWriter(IServedImage server, NbdClient client, bool readsAsZeros)
    {
        _server = server;
        _client = client;
        _readsAsZeros = readsAsZeros;
    }

    public ImageWriteCounts Counts { get; private set; }

    /// <summary>
    /// Serves <paramref name="image"/> (of <paramref name="format"/>) with qemu-nbd where <paramref name="images"/> run, and
    /// connects. <paramref name="newImage"/>: the image was just created without a backing file, so it reads as zeros.
    /// </summary>
    public static async Task<NbdImageWriter> OpenAsync(IHostImages images, string image, string format, bool newImage, CancellationToken cancellationToken)
    {
        var server = await images.ServeAsync(image, format, readOnly: false, bitmap: null, cancellationToken);
        try
        {
            return new NbdImageWriter(server, await ConnectAsync(server.SocketPath, cancellationToken), newImage);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Connects, retrying for a moment: qemu-nbd's socket file appears at bind(), a moment before it listens (a
    /// connection then is refused; through an SSH forward it is closed at once).
    /// </summary>
    private static async Task<NbdClient> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await NbdClient.ConnectAsync(NbdUri.Unix(socketPath), NbdConnectOptions.Default, cancellationToken);
            }
            catch (NbdException) when (attempt < ConnectAttempts)
            {
                // Not listening yet: try again shortly.
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    public async Task WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var take = Math.Min(data.Length, MaxWrite - _run.Length);
            if (_run.Length == 0 || offset != _run.End || take == 0 || _head + take > BufferSize)
            {
                await SendRunAsync(cancellationToken);
                take = Math.Min(data.Length, MaxWrite);
                var skip = _head + take > BufferSize ? BufferSize - _head : 0;
                await WaitForBytesAsync(skip + take);
                _used += skip;
                _head = (_head + skip) % BufferSize;
                _run = new Run(offset, _head, 0, skip);
            }
            else
            {
                await WaitForBytesAsync(take);
            }

            data[..take].CopyTo(_buffer.AsMemory(_head));
            _head += take;
            _used += take;
            _run = _run with { Length = _run.Length + take };
            offset += take;
            data = data[take..];
        }
    }

    public async Task ZeroAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (_readsAsZeros)
        {
            return;
        }

        if (_client.CanWriteZeroes)
        {
            await WaitForSlotAsync();
            Counts = Counts.Zero(length);
            _pending.Enqueue((_client.WriteZeroesAsync(offset, length, noHole: false, cancellationToken), 0));
            return;
        }

        // A server without WRITE_ZEROES (not qemu-nbd) gets zero-filled writes.
        var zeros = new byte[(int)Math.Min(length, MaxWrite)];
        for (var done = 0L; done < length; done += zeros.Length)
        {
            await WriteAsync(offset + done, zeros.AsMemory(0, (int)Math.Min(zeros.Length, length - done)), cancellationToken);
        }
    }

    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        await SendRunAsync(cancellationToken);
        while (_pending.Count > 0)
        {
            await CompleteOldestAsync();
        }

        await _client.FlushAsync(cancellationToken);
        _closed = true;
        await _client.DisposeAsync();
        try
        {
            await _server.CloseAsync(cancellationToken);
        }
        finally
        {
            await _server.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        while (_pending.Count > 0)
        {
            try
            {
                await CompleteOldestAsync();
            }
            catch (Exception e) when (e is NbdException or OperationCanceledException or ArgumentException)
            {
                // Aborting: the image is thrown away, only the peer needs releasing.
            }
        }

        await CloseAsync();
    }

    /// <summary>Sends the run of contiguous data gathered so far as one write; its bytes are freed when it is answered.</summary>
    private async Task SendRunAsync(CancellationToken cancellationToken)
    {
        if (_run.Length == 0)
        {
            return;
        }

        var run = _run;
        _run = default;
        await WaitForSlotAsync();
        Counts = Counts.Write(run.Length);
        _pending.Enqueue((_client.WriteAsync(run.Offset, _buffer.AsMemory(run.Start, run.Length), cancellationToken), run.Skipped + run.Length));
    }

    private async Task WaitForSlotAsync()
    {
        while (_pending.Count >= MaxRequests)
        {
            await CompleteOldestAsync();
        }
    }

    /// <summary>
    /// Waits until <paramref name="bytes"/> more fit in the ring. The ring is used and freed in order, so the free
    /// bytes lie right after <see cref="_head"/> (the caller skips to the start when the end is too close).
    /// </summary>
    private async Task WaitForBytesAsync(int bytes)
    {
        while (_used + bytes > BufferSize)
        {
            await CompleteOldestAsync();
        }
    }

    private async Task CompleteOldestAsync()
    {
        var (request, bytes) = _pending.Dequeue();
        try
        {
            await request;
        }
        finally
        {
            _used -= bytes;
        }
    }

    private async Task CloseAsync()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        await _client.DisposeAsync();
        await _server.DisposeAsync();
    }

    /// <summary>
    /// Contiguous data not sent yet: <see cref="Length"/> bytes for disk offset <see cref="Offset"/> at ring position
    /// <see cref="Start"/>; <see cref="Skipped"/> bytes at the ring's end were left unused before it (freed with it).
    /// </summary>
    private readonly record struct Run(long Offset, int Start, int Length, int Skipped)
    {
        public long End => Offset + Length;
    }
}
