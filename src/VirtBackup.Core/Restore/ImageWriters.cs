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

/// <summary>The file of an image written directly: new (it must not exist) and readable by its owner only (0600).</summary>
internal static class NewImageFile
{
    public static FileStream Create(string path) => new(path, new FileStreamOptions
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.ReadWrite,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });
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
        var file = NewImageFile.Create(path);
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
