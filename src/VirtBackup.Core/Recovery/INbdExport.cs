namespace VirtBackup.Core.Recovery;

/// <summary>
/// Part of a READ reply: <see cref="Length"/> bytes at disk offset <see cref="Offset"/>, either
/// <see cref="Data"/> (borrowed from the cache until the <see cref="ExportRead"/> is disposed) or zeros.
/// </summary>
internal readonly record struct ExportPiece(long Offset, int Length, ReadOnlyMemory<byte> Data, bool IsZero);

/// <summary>The pieces of one read and the buffers they borrow, given back on dispose.</summary>
internal sealed class ExportRead(IReadOnlyList<ExportPiece> pieces, IReadOnlyList<IDisposable> holds) : IDisposable
{
    public IReadOnlyList<ExportPiece> Pieces { get; } = pieces;

    public void Dispose()
    {
        foreach (var hold in holds)
        {
            hold.Dispose();
        }
    }
}

/// <summary>One block-status extent in <c>base:allocation</c> terms (NBD_STATE_HOLE / NBD_STATE_ZERO flags).</summary>
internal readonly record struct ExportExtent(uint Length, uint Flags);

/// <summary>A read-only export the NBD server serves: a name, a size, reads and allocation status.</summary>
internal interface INbdExport
{
    string Name { get; }

    string Description { get; }

    long Size { get; }

    /// <summary>
    /// The bytes of [offset, offset + length) (inside the export) as pieces in order, valid until the result is
    /// disposed; throws <see cref="ExportReadException"/>.
    /// </summary>
    Task<ExportRead> ReadAsync(long offset, int length);

    /// <summary>Allocation extents from <paramref name="offset"/>, covering at most <paramref name="length"/> bytes, at most <paramref name="max"/> of them.</summary>
    void Extents(long offset, long length, int max, List<ExportExtent> into);
}
