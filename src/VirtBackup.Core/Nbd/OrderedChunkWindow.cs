using System.Buffers;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// The read pipeline shared by one connection (<see cref="NbdClient.ReadRangesAsync"/>) and several
/// (<see cref="NbdReaderPool.ReadRangesAsync"/>): the ranges cut into chunks that never cross a range's end, up to
/// <c>inFlight</c> READs outstanding in pooled buffers, each chunk handed to the sink strictly in order, and on
/// failure every READ still out awaited before its buffer goes back to the pool.
/// </summary>
internal static class OrderedChunkWindow
{
    /// <summary>
    /// <paramref name="chunkSize"/> fitted to the server: at most its maximum payload, a multiple of its minimum block size.
    /// </summary>
    public static int FitChunkSize(int chunkSize, int maxPayloadLength, uint minimumBlockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        chunkSize = Math.Min(chunkSize, maxPayloadLength);
        chunkSize -= chunkSize % (int)minimumBlockSize;
        if (chunkSize == 0)
        {
            throw new ArgumentException($"The chunk size must be at least the server's minimum block size ({minimumBlockSize}).", nameof(chunkSize));
        }

        return chunkSize;
    }

    /// <param name="read">Starts the READ of one chunk (its offset, the buffer to fill).</param>
    /// <param name="cancellationToken">Checked before every chunk goes to the sink.</param>
    /// <param name="readFailed">Called when a READ failed, before its exception is rethrown; it may throw a better one.</param>
    /// <param name="abandoning">Called once when the pipeline stops early (failure, cancellation), before the
    /// outstanding READs are awaited: the place to cancel them.</param>
    public static async Task RunAsync(
        IReadOnlyList<NbdRange> ranges,
        int chunkSize,
        int inFlight,
        Func<long, Memory<byte>, Task> read,
        Func<long, ReadOnlyMemory<byte>, ValueTask> sink,
        CancellationToken cancellationToken,
        Action? readFailed = null,
        Func<Task>? abandoning = null)
    {
        var rangeIndex = 0;
        var next = ranges.Count > 0 ? ranges[0].Offset : 0;
        var window = new Queue<(long Offset, byte[] Buffer, int Length, Task Read)>(inFlight);
        var completed = false;
        try
        {
            while (window.Count < inFlight && TryStart(out var started))
            {
                window.Enqueue(started);
            }

            while (window.Count > 0)
            {
                var (chunkOffset, buffer, count, pending) = window.Dequeue();
                try
                {
                    try
                    {
                        await pending.ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        readFailed?.Invoke();
                        throw;
                    }

                    cancellationToken.ThrowIfCancellationRequested(); // reads done already must not outrun a cancellation
                    await sink(chunkOffset, buffer.AsMemory(0, count)).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                if (TryStart(out var started))
                {
                    window.Enqueue(started);
                }
            }

            completed = true;
        }
        finally
        {
            if (!completed)
            {
                if (abandoning is not null)
                {
                    await abandoning().ConfigureAwait(false);
                }

                // The buffers go back to the pool only once the reply threads let go of them.
                while (window.Count > 0)
                {
                    var (_, buffer, _, pending) = window.Dequeue();
                    try
                    {
                        await pending.ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        // The first failure is the one being reported.
                    }

                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        // Starts the READ of the next chunk, moving on to the next non-empty range at a range's end.
        bool TryStart(out (long, byte[], int, Task) started)
        {
            while (rangeIndex < ranges.Count && next >= ranges[rangeIndex].End)
            {
                rangeIndex++;
                next = rangeIndex < ranges.Count ? ranges[rangeIndex].Offset : 0;
            }

            if (rangeIndex == ranges.Count)
            {
                started = default;
                return false;
            }

            var count = (int)Math.Min(chunkSize, ranges[rangeIndex].End - next);
            var buffer = ArrayPool<byte>.Shared.Rent(count);
            started = (next, buffer, count, read(next, buffer.AsMemory(0, count)));
            next += count;
            return true;
        }
    }
}
