using System.Buffers;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Restore;

/// <summary>Writes one disk image: data at offsets, ranges that must read as zeros, then a flush.</summary>
internal interface IImageWriter : IAsyncDisposable
{
    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; the caller may reuse its buffer once this returns.</summary>
    Task WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Makes the range read as zeros, keeping the image thin.</summary>
    Task ZeroAsync(long offset, long length, CancellationToken cancellationToken);

    /// <summary>Waits for every write, flushes the image to stable storage and closes it.</summary>
    Task FinishAsync(CancellationToken cancellationToken);

    /// <summary>What was sent to the image so far.</summary>
    ImageWriteCounts Counts { get; }
}

/// <summary>
/// The requests a writer sent: data writes and zero requests, with their bytes. A restore logs them per disk, and
/// they show that a new image gets no zero requests and an incremental touches only the ranges of its map.
/// </summary>
internal readonly record struct ImageWriteCounts(long Writes, long WriteBytes, long Zeroes, long ZeroBytes)
{
    public ImageWriteCounts Write(long bytes) => this with { Writes = Writes + 1, WriteBytes = WriteBytes + bytes };

    public ImageWriteCounts Zero(long bytes) => this with { Zeroes = Zeroes + 1, ZeroBytes = ZeroBytes + bytes };
}

/// <summary>
/// An image served by a writable <c>qemu-nbd</c> (qcow2, a qcow2 overlay on any base, or raw on a remote host; over
/// an SSH forward when the host is remote) and written with the
/// native NBD client. Up to <see cref="Depth"/> writes are in flight, so decoding the next member overlaps
/// writing this one; zero ranges are WRITE_ZEROES without NO_HOLE, which qemu turns into unallocated or
/// zero clusters.
/// </summary>
internal sealed class NbdImageWriter : IImageWriter
{
    private const int Depth = 4;
    private const int ConnectAttempts = 40;

    private readonly IServedImage _server;
    private readonly NbdClient _client;
    private readonly Queue<(Task Write, byte[]? Buffer)> _pending = new();
    private bool _closed;

    public ImageWriteCounts Counts { get; private set; }

    private NbdImageWriter(IServedImage server, NbdClient client)
    {
        _server = server;
        _client = client;
    }

    /// <summary>Serves <paramref name="image"/> (of <paramref name="format"/>) with qemu-nbd where <paramref name="images"/> run, and connects.</summary>
    public static async Task<NbdImageWriter> OpenAsync(IHostImages images, string image, string format, CancellationToken cancellationToken)
    {
        var server = await images.ServeAsync(image, format, readOnly: false, bitmap: null, cancellationToken);
        try
        {
            return new NbdImageWriter(server, await ConnectAsync(server.SocketPath, cancellationToken));
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
        await MakeRoomAsync();
        var buffer = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(buffer);
        Counts = Counts.Write(data.Length);
        _pending.Enqueue((_client.WriteAsync(offset, buffer.AsMemory(0, data.Length), cancellationToken), buffer));
    }

    public async Task ZeroAsync(long offset, long length, CancellationToken cancellationToken)
    {
        await MakeRoomAsync();
        if (_client.CanWriteZeroes)
        {
            Counts = Counts.Zero(length);
            _pending.Enqueue((_client.WriteZeroesAsync(offset, length, noHole: false, cancellationToken), null));
            return;
        }

        // A server without WRITE_ZEROES (not qemu-nbd) gets zero-filled writes.
        var zeros = new byte[(int)Math.Min(length, 4 << 20)];
        for (var done = 0L; done < length; done += zeros.Length)
        {
            Counts = Counts.Write(Math.Min(zeros.Length, length - done));
            await _client.WriteAsync(offset + done, zeros.AsMemory(0, (int)Math.Min(zeros.Length, length - done)), cancellationToken);
        }
    }

    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        while (_pending.Count > 0)
        {
            await CompleteOldestAsync();
        }

        await _client.FlushAsync(cancellationToken);
        await CloseAsync();
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
                // Aborting: the image is thrown away, only the buffers and the peer need releasing.
            }
        }

        await CloseAsync();
    }

    private async Task MakeRoomAsync()
    {
        while (_pending.Count >= Depth)
        {
            await CompleteOldestAsync();
        }
    }

    private async Task CompleteOldestAsync()
    {
        var (write, buffer) = _pending.Dequeue();
        try
        {
            await write;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
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
}

/// <summary>
/// A new raw image written directly: a sparse file of the virtual size, written only where the data is not
/// zero (in 4 KiB blocks), so unallocated and zero ranges stay holes. Only for a new, empty file.
/// </summary>
internal sealed class RawFileWriter : IImageWriter
{
    private const int Block = 4096;
    private readonly FileStream _file;
    private bool _closed;

    private RawFileWriter(FileStream file) => _file = file;

    public ImageWriteCounts Counts { get; private set; }

    public static RawFileWriter Create(string path, long virtualSize)
    {
        var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        try
        {
            file.SetLength(virtualSize);
            return new RawFileWriter(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public async Task WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var position = 0;
        while (position < data.Length)
        {
            var (start, length) = NextNonZeroRun(data.Span, offset, position);
            if (length == 0)
            {
                break;
            }

            Counts = Counts.Write(length);
            await RandomAccess.WriteAsync(_file.SafeFileHandle, data.Slice(start, length), offset + start, cancellationToken);
            position = start + length;
        }
    }

    /// <summary>A new sparse file reads as zeros everywhere: nothing to do.</summary>
    public Task ZeroAsync(long offset, long length, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task FinishAsync(CancellationToken cancellationToken)
    {
        _file.Flush(flushToDisk: true);
        Close();
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }

    /// <summary>From <paramref name="position"/> on: the next run of disk-aligned blocks that hold a non-zero byte.</summary>
    private static (int Start, int Length) NextNonZeroRun(ReadOnlySpan<byte> data, long diskOffset, int position)
    {
        int? start = null;
        while (position < data.Length)
        {
            var blockEnd = (int)Math.Min(data.Length, (diskOffset + position) / Block * Block + Block - diskOffset);
            var nonZero = data[position..blockEnd].ContainsAnyExcept((byte)0);
            if (nonZero)
            {
                start ??= position;
            }
            else if (start is { } s)
            {
                return (s, position - s);
            }

            position = blockEnd;
        }

        return start is { } begun ? (begun, data.Length - begun) : (data.Length, 0);
    }

    private void Close()
    {
        if (!_closed)
        {
            _closed = true;
            _file.Dispose();
        }
    }
}
