namespace VirtBackup.Core.Nbd;

/// <summary>Streaming a large range: several READs in flight, chunks handed over in offset order.</summary>
public sealed partial class NbdClient
{
    // 512 KiB: against the export of a libvirt pull-mode backup job (QEMU 7.2), reading the benchmark's 768 MiB over 4
    // connections with a 32 MiB window took 0.41-0.45 s with 256-768 KiB requests, like `nbdcopy URI null:` (0.44-0.48 s),
    // but 0.72-0.87 s with 1 MiB and 0.70-1.03 s with 2-4 MiB requests (integration/bench/RESULTS.md). qemu-nbd reads a
    // whole request before sending it, so much larger requests do not help either.
    public const int DefaultReadChunkSize = 512 * 1024;
    public const int DefaultReadsInFlight = 16;

    /// <summary>
    /// Reads [<paramref name="offset"/>, offset + <paramref name="length"/>) with up to <paramref name="inFlight"/>
    /// READs of <paramref name="chunkSize"/> bytes outstanding, and calls <paramref name="sink"/> with each chunk's
    /// offset and bytes, strictly in offset order. The memory passed to the sink is pooled: it is valid only until
    /// the sink's task completes.
    /// </summary>
    public Task ReadRangeAsync(
        long offset,
        long length,
        Func<long, ReadOnlyMemory<byte>, ValueTask> sink,
        int chunkSize = DefaultReadChunkSize,
        int inFlight = DefaultReadsInFlight,
        CancellationToken cancellationToken = default) =>
        ReadRangesAsync([new NbdRange(offset, length)], sink, chunkSize, inFlight, cancellationToken);

    /// <summary>
    /// Reads several ranges as one pipeline: like <see cref="ReadRangeAsync"/>, but the window of READs in flight
    /// runs on from one range into the next instead of draining at every range's end (a fragmented disk has
    /// thousands of small extents). Chunks never cross a range's end; the sink sees them in the order of
    /// <paramref name="ranges"/>, and within a range in offset order.
    /// </summary>
    public Task ReadRangesAsync(
        IReadOnlyList<NbdRange> ranges,
        Func<long, ReadOnlyMemory<byte>, ValueTask> sink,
        int chunkSize = DefaultReadChunkSize,
        int inFlight = DefaultReadsInFlight,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFlight);
        foreach (var range in ranges)
        {
            CheckRange("READ", range.Offset, range.Length);
        }

        chunkSize = OrderedChunkWindow.FitChunkSize(chunkSize, MaxPayloadLength, MinimumBlockSize);
        return OrderedChunkWindow.RunAsync(ranges, chunkSize, inFlight, (offset, buffer) => ReadAsync(offset, buffer, cancellationToken), sink, cancellationToken);
    }
}

/// <summary>A byte range of an export: [<see cref="Offset"/>, <see cref="End"/>).</summary>
public readonly record struct NbdRange(long Offset, long Length)
{
    public long End => Offset + Length;
}
