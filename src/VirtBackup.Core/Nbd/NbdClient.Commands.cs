using System.Numerics;
using System.Runtime.CompilerServices;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>The transmission commands. Large READ/WRITE/TRIM/WRITE_ZEROES are split and pipelined.</summary>
public sealed partial class NbdClient
{
    /// <summary>Largest length of one request without payload (TRIM, WRITE_ZEROES, BLOCK_STATUS).</summary>
    internal const uint MaxNonPayloadLength = 1u << 30;

    /// <summary>Largest READ/WRITE payload we send in one request: the server's maximum, at most 32 MiB.</summary>
    internal int MaxPayloadLength => (int)Math.Min(MaximumBlockSize, DefaultMaximumBlockSize);

    /// <summary>Fills <paramref name="buffer"/> with the export's bytes at <paramref name="offset"/> (holes read as zeroes).</summary>
    public Task ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange("READ", offset, buffer.Length);
        return Split(offset, buffer.Length, MaxPayloadLength, (chunkOffset, length) =>
            ExecuteAsync(CmdRead, 0, chunkOffset, length, buffer.Slice((int)(chunkOffset - offset), (int)length), default, 0, cancellationToken));
    }

    public Task WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckWritable("WRITE");
        CheckRange("WRITE", offset, data.Length);
        return Split(offset, data.Length, MaxPayloadLength, (chunkOffset, length) =>
            ExecuteAsync(CmdWrite, 0, chunkOffset, length, default, data.Slice((int)(chunkOffset - offset), (int)length), 0, cancellationToken));
    }

    /// <summary>
    /// Makes the range read as zeroes. Without <paramref name="noHole"/> the server may punch holes, which keeps
    /// thin images thin; with it the range stays allocated.
    /// </summary>
    public Task WriteZeroesAsync(long offset, long length, bool noHole = false, CancellationToken cancellationToken = default)
    {
        CheckWritable("WRITE_ZEROES");
        if (!CanWriteZeroes)
        {
            throw Unsupported("WRITE_ZEROES", "NBD_FLAG_SEND_WRITE_ZEROES", "write zero-filled data instead");
        }

        CheckRange("WRITE_ZEROES", offset, length);
        var flags = noHole ? CmdFlagNoHole : (ushort)0;
        return Split(offset, length, (int)MaxNonPayloadLength, (chunkOffset, count) =>
            ExecuteAsync(CmdWriteZeroes, flags, chunkOffset, count, default, default, 0, cancellationToken));
    }

    /// <summary>Tells the server the range is no longer needed (its contents become unspecified).</summary>
    public Task TrimAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckWritable("TRIM");
        if (!CanTrim)
        {
            throw Unsupported("TRIM", "NBD_FLAG_SEND_TRIM", "skip the trim");
        }

        CheckRange("TRIM", offset, length);
        return Split(offset, length, (int)MaxNonPayloadLength, (chunkOffset, count) =>
            ExecuteAsync(CmdTrim, 0, chunkOffset, count, default, default, 0, cancellationToken));
    }

    /// <summary>Waits until every write the server has acknowledged is on stable storage.</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default)
    {
        if (!CanFlush)
        {
            throw Unsupported("FLUSH", "NBD_FLAG_SEND_FLUSH", "the server offers no durability guarantee to wait for");
        }

        return ExecuteAsync(CmdFlush, 0, 0, 0, default, default, 0, cancellationToken);
    }

    /// <summary>
    /// One BLOCK_STATUS request for <paramref name="context"/> from <paramref name="offset"/> (the length is capped at
    /// 1 GiB). Returns the server's extents, validated: consecutive from <paramref name="offset"/>, possibly covering
    /// less than asked.
    /// </summary>
    public Task<IReadOnlyList<NbdExtent>> BlockStatusAsync(string context, long offset, long length, CancellationToken cancellationToken = default) =>
        BlockStatusAsync(context, offset, length, requestOne: false, cancellationToken);

    /// <summary>As above; <paramref name="requestOne"/> sets NBD_CMD_FLAG_REQ_ONE (one extent per context).</summary>
    public async Task<IReadOnlyList<NbdExtent>> BlockStatusAsync(
        string context, long offset, long length, bool requestOne, CancellationToken cancellationToken = default) =>
        await BlockStatusListAsync(context, offset, length, requestOne, cancellationToken).ConfigureAwait(false);

    /// <summary>As above, as the list the reply was parsed into (which the caller may then own and extend).</summary>
    private async Task<List<NbdExtent>> BlockStatusListAsync(
        string context, long offset, long length, bool requestOne, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!MetaContexts.TryGetValue(context, out var contextId))
        {
            throw new ArgumentException(
                $"Metadata context '{context}' was not negotiated (negotiated: {(MetaContexts.Count == 0 ? "none" : string.Join(", ", MetaContexts.Keys))}); " +
                "list it in NbdConnectOptions.MetaContexts.", nameof(context));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        CheckRange("BLOCK_STATUS", offset, length);
        var count = (uint)Math.Min(length, MaxNonPayloadLength);
        var request = await ExecuteAsync(CmdBlockStatus, requestOne ? CmdFlagReqOne : (ushort)0, offset, count, default, default, contextId, cancellationToken)
            .ConfigureAwait(false);
        return request.Extents!;
    }

    /// <summary>
    /// The extents of <paramref name="context"/> over the whole range, in order; adjacent extents with equal flags are
    /// merged. The range is mapped in pieces, several of them queried at once (each as often as its replies need), so the
    /// requests do not wait for each other's round trip. Both follow the replies, so the extents held stay about the same
    /// however fragmented the range is: <see cref="ExtentPiecesAtStart"/> pieces of <see cref="MaxExtentPieceLength"/> at
    /// first, then pieces sized for about <see cref="ExtentsPerPiece"/> extents of the last piece's density
    /// (<see cref="PieceLengthAfter"/>), as many in flight as <see cref="ExtentBudget"/> extents allow
    /// (<see cref="PiecesInFlightAfter"/>).
    /// </summary>
    public async IAsyncEnumerable<NbdExtent> GetExtentsAsync(
        string context, long offset, long length, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        CheckRange("BLOCK_STATUS", offset, length);
        NbdExtent? pending = null;
        var end = offset + length;
        var next = offset;
        var pieces = new Queue<(Task<List<NbdExtent>> Extents, long Length)>();
        var inFlight = ExtentPiecesAtStart;
        var pieceLength = MaxExtentPieceLength;
        try
        {
            while (next < end || pieces.Count > 0)
            {
                while (next < end && pieces.Count < inFlight)
                {
                    var pieceEnd = Math.Min(end, next + pieceLength);
                    pieces.Enqueue((MapPieceAsync(context, next, pieceEnd, cancellationToken), pieceEnd - next));
                    next = pieceEnd;
                }

                var (mapping, mapped) = pieces.Dequeue();
                var piece = await mapping.ConfigureAwait(false);
                inFlight = PiecesInFlightAfter(piece.Count);
                pieceLength = PieceLengthAfter(mapped, piece.Count);

                foreach (var extent in piece)
                {
                    if (pending is { } merged && merged.Flags == extent.Flags)
                    {
                        pending = merged with { Length = merged.Length + extent.Length };
                    }
                    else
                    {
                        if (pending is { } done)
                        {
                            yield return done;
                        }

                        pending = extent;
                    }
                }
            }
        }
        finally
        {
            // After a failure, or when the caller stops early, the pieces still queried no longer matter.
            foreach (var (mapping, _) in pieces)
            {
                _ = mapping.ContinueWith(static t => t.Exception, TaskScheduler.Default);
            }
        }

        if (pending is { } last)
        {
            yield return last;
        }
    }

    /// <summary>The most one <see cref="GetExtentsAsync"/> piece maps (the most one BLOCK_STATUS asks for).</summary>
    internal const long MaxExtentPieceLength = MaxNonPayloadLength;

    /// <summary>The least one <see cref="GetExtentsAsync"/> piece maps, however dense the extents.</summary>
    internal const long MinExtentPieceLength = 1 << 20;

    /// <summary>
    /// Extents a piece is sized for: their list (24 bytes each, 48 KiB) stays below the large object heap, so a disk
    /// with many extents leaves only short-lived garbage (an 8 GiB disk with 500,000 extents: pieces of 32 MiB).
    /// </summary>
    internal const int ExtentsPerPiece = 2048;

    /// <summary>
    /// The piece length after a piece of <paramref name="length"/> bytes held <paramref name="extents"/> extents: the
    /// power of two nearest below the length holding <see cref="ExtentsPerPiece"/> extents at that density, between
    /// <see cref="MinExtentPieceLength"/> and <see cref="MaxExtentPieceLength"/>.
    /// </summary>
    internal static long PieceLengthAfter(long length, int extents)
    {
        var fitting = Math.Max(length * ExtentsPerPiece / Math.Max(extents, 1), 1);
        return Math.Clamp(1L << BitOperations.Log2((ulong)fitting), MinExtentPieceLength, MaxExtentPieceLength);
    }

    /// <summary>
    /// Pieces <see cref="GetExtentsAsync"/> keeps in flight (qemu's NBD server works on 16 requests of a client at once).
    /// qemu's qcow2 answers one BLOCK_STATUS at a time anyway (1 TiB scale disk: 2.1 s either way); what this hides is
    /// the round trip, which a remote host pays per request (1 TiB is 1,024 requests).
    /// </summary>
    internal const int ExtentPiecesInFlight = 8;

    /// <summary>Pieces in flight before any reply told how fragmented the range is.</summary>
    internal const int ExtentPiecesAtStart = 2;

    /// <summary>
    /// Extents the pieces in flight may hold together, judged on the last piece (65,536 extents are 1.5 MiB). Pieces
    /// sized for <see cref="ExtentsPerPiece"/> keep <see cref="ExtentPiecesInFlight"/> in flight; after a piece denser
    /// than its length was sized for (62,500 extents in 1 GiB), fewer are in flight until the length has adapted.
    /// </summary>
    internal const int ExtentBudget = 65_536;

    /// <summary>Pieces to keep in flight after a piece of <paramref name="extents"/> extents.</summary>
    internal static int PiecesInFlightAfter(int extents) => Math.Clamp(ExtentBudget / Math.Max(extents, 1), 1, ExtentPiecesInFlight);

    /// <summary>The extents of [<paramref name="start"/>, <paramref name="end"/>), querying until the replies cover it.</summary>
    private async Task<List<NbdExtent>> MapPieceAsync(string context, long start, long end, CancellationToken cancellationToken)
    {
        var extents = await BlockStatusListAsync(context, start, end - start, requestOne: false, cancellationToken).ConfigureAwait(false);
        for (var position = extents[^1].End; position < end;)
        {
            var reply = await BlockStatusAsync(context, position, end - position, cancellationToken).ConfigureAwait(false);
            extents.AddRange(reply);
            position = reply[^1].End;
        }

        return extents;
    }

    /// <summary>Issues one request per piece of at most <paramref name="maxLength"/> bytes, all in flight together.</summary>
    private static Task Split(long offset, long length, int maxLength, Func<long, uint, Task> send)
    {
        if (length == 0)
        {
            return Task.CompletedTask;
        }

        if (length <= maxLength)
        {
            return send(offset, (uint)length);
        }

        var pieces = new List<Task>((int)((length + maxLength - 1) / maxLength));
        for (var done = 0L; done < length; done += maxLength)
        {
            pieces.Add(send(offset + done, (uint)Math.Min(maxLength, length - done)));
        }

        return Task.WhenAll(pieces);
    }

    private void CheckRange(string command, long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (offset > ExportSize || length > ExportSize - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(length),
                $"NBD {command} at offset {offset} (length {length}) goes beyond the end of the export ({ExportSize} bytes).");
        }

        var min = MinimumBlockSize;
        if (min > 1 && (offset % min != 0 || (length % min != 0 && offset + length != ExportSize)))
        {
            throw new ArgumentException(
                $"NBD {command} at offset {offset} (length {length}) is not aligned to the server's minimum block size of {min} bytes.");
        }
    }

    private void CheckWritable(string command)
    {
        if (ReadOnly)
        {
            throw new NbdException($"NBD {command}: the export {Uri} is read-only.", command);
        }
    }

    private NbdException Unsupported(string command, string flag, string hint) =>
        new($"NBD {command}: the server does not support it ({flag} not set); {hint}.", command);
}
