using System.Buffers.Binary;
using VirtBackup.Core.Nbd;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Transmission, server side: the request loop reads requests one after another and answers each on its own task
/// (several at once, so pipelined requests overlap); each answer is a reply handed to the connection's
/// <see cref="NbdReplyWriter"/>, which writes replies whole. Writes, trims and zeroing get EPERM (the export is
/// read-only); a request that breaks the framing (bad magic, a write payload past the limit) ends the connection,
/// since nothing after it can be trusted.
/// </summary>
internal sealed partial class NbdServerSession
{
    private const int MaxExtentsPerReply = 2048;
    private const int HoleChunkSize = StructuredReplyHeaderSize + 12;
    private const int DataChunkHeaderSize = StructuredReplyHeaderSize + 8;
    private static readonly byte[] Zeros = new byte[256 * 1024];

    private async Task TransmitAsync(INbdExport export)
    {
        // A place in flight is taken for each request and given back once its reply is written (or dropped).
        var inFlight = new SemaphoreSlim(limits.RequestsInFlight, limits.RequestsInFlight);
        var writer = new NbdReplyWriter(socket, inFlight, e =>
        {
            // The client vanished mid-reply, or the connection is being closed: nothing more can be said to it.
            log.Debug("NBD connection closed while writing a reply: {Message}", e.Message);
            Close();
        });
        var pending = new List<Task>();
        var header = new byte[RequestHeaderSize];
        try
        {
            while (await ReadExactlyAsync(header).ConfigureAwait(false))
            {
                var request = NbdRequestHeader.Parse(header);
                if (request.Magic != RequestMagic)
                {
                    log.Debug("NBD client sent request magic 0x{Magic:x8}: closing", request.Magic);
                    return;
                }

                if (request.Command == CmdDisc)
                {
                    return;
                }

                if (request.Command == CmdWrite)
                {
                    // The payload must be read to stay in step; one past the limit cannot be skipped safely.
                    if (request.Length > limits.MaxRead)
                    {
                        return;
                    }

                    await DiscardAsync((int)request.Length).ConfigureAwait(false);
                }

                await inFlight.WaitAsync(_closed.Token).ConfigureAwait(false);
                pending.RemoveAll(t => t.IsCompleted);
                pending.Add(AnswerAsync(export, request, writer, inFlight));
            }
        }
        finally
        {
            // NBD_CMD_DISC: answer what is in flight, then hang up.
            await Task.WhenAll(pending).ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task DiscardAsync(int length)
    {
        var buffer = new byte[Math.Min(length, 64 * 1024)];
        while (length > 0)
        {
            var n = Math.Min(length, buffer.Length);
            if (!await ReadExactlyAsync(buffer.AsMemory(0, n)).ConfigureAwait(false))
            {
                throw new EndOfStreamException();
            }

            length -= n;
        }
    }

    /// <summary>Answers one request by posting its reply; nothing escapes.</summary>
    private async Task AnswerAsync(INbdExport export, NbdRequestHeader request, NbdReplyWriter writer, SemaphoreSlim inFlight)
    {
        NbdReply reply;
        try
        {
            await Task.Yield();
            reply = request.Command switch
            {
                CmdRead => await ReadAsync(export, request).ConfigureAwait(false),
                CmdBlockStatus => BlockStatus(export, request),
                CmdWrite or CmdTrim or CmdWriteZeroes => ErrorReply(request, EPerm, "the export is read-only (a backup)"),
                CmdFlush or CmdCache => SimpleReply(request.Handle, 0),
                _ => ErrorReply(request, EInval, $"unknown command {request.Command}"),
            };
        }
        catch (Exception e)
        {
            log.Debug("NBD connection closed while answering {Command}: {Message}", CommandName(request.Command), e.Message);
            inFlight.Release();
            Close();
            return;
        }

        writer.Post(reply);
    }

    private string? RangeProblem(INbdExport export, NbdRequestHeader request, uint max)
    {
        if (request.Length == 0)
        {
            return "zero length";
        }

        if (request.Offset > (ulong)export.Size || request.Length > (ulong)export.Size - request.Offset)
        {
            return $"range {request.Offset}+{request.Length} is past the end of the export ({export.Size} bytes)";
        }

        return request.Length > max ? $"length {request.Length} is more than the maximum {max}" : null;
    }

    private async Task<NbdReply> ReadAsync(INbdExport export, NbdRequestHeader request)
    {
        if (RangeProblem(export, request, limits.MaxRead) is { } problem)
        {
            return ErrorReply(request, EInval, problem);
        }

        ExportRead read;
        try
        {
            read = await export.ReadAsync((long)request.Offset, (int)request.Length).ConfigureAwait(false);
        }
        catch (ExportReadException e)
        {
            return ErrorReply(request, EIo, e.Message);
        }

        var reply = new NbdReply(read);
        try
        {
            if (_structured)
            {
                AddChunks(reply, request.Handle, read.Pieces);
            }
            else
            {
                AddSimpleData(reply, request.Handle, read.Pieces);
            }
        }
        catch
        {
            read.Dispose();
            throw;
        }

        return reply;
    }

    /// <summary>One chunk per piece: data straight from the cache's buffer, zeros as a hole chunk (no bytes).</summary>
    private static void AddChunks(NbdReply reply, ulong handle, IReadOnlyList<ExportPiece> pieces)
    {
        var size = 0;
        foreach (var piece in pieces)
        {
            size += piece.IsZero ? HoleChunkSize : DataChunkHeaderSize;
        }

        var headers = new byte[size];
        var at = 0;
        for (var i = 0; i < pieces.Count; i++)
        {
            var piece = pieces[i];
            var flags = i == pieces.Count - 1 ? ReplyFlagDone : (ushort)0;
            var chunk = headers.AsSpan(at);
            BinaryPrimitives.WriteUInt64BigEndian(chunk[StructuredReplyHeaderSize..], (ulong)piece.Offset);
            if (piece.IsZero)
            {
                NbdWire.WriteChunkHeader(chunk, flags, ReplyTypeOffsetHole, handle, 12);
                BinaryPrimitives.WriteUInt32BigEndian(chunk[(StructuredReplyHeaderSize + 8)..], (uint)piece.Length);
                reply.Add(new ArraySegment<byte>(headers, at, HoleChunkSize));
                at += HoleChunkSize;
            }
            else
            {
                NbdWire.WriteChunkHeader(chunk, flags, ReplyTypeOffsetData, handle, (uint)(8 + piece.Length));
                reply.Add(new ArraySegment<byte>(headers, at, DataChunkHeaderSize));
                reply.Add(piece.Data);
                at += DataChunkHeaderSize;
            }
        }
    }

    private static void AddSimpleData(NbdReply reply, ulong handle, IReadOnlyList<ExportPiece> pieces)
    {
        var header = new byte[SimpleReplyHeaderSize];
        NbdWire.WriteSimpleReply(header, 0, handle);
        reply.Add(header);
        foreach (var piece in pieces)
        {
            if (!piece.IsZero)
            {
                reply.Add(piece.Data);
                continue;
            }

            for (var left = piece.Length; left > 0; left -= Zeros.Length)
            {
                reply.Add(new ArraySegment<byte>(Zeros, 0, Math.Min(left, Zeros.Length)));
            }
        }
    }

    private NbdReply BlockStatus(INbdExport export, NbdRequestHeader request)
    {
        if (!_baseAllocation || !_structured)
        {
            return ErrorReply(request, EInval, "no metadata context was negotiated (NBD_OPT_SET_META_CONTEXT base:allocation)");
        }

        if (RangeProblem(export, request, uint.MaxValue) is { } problem)
        {
            return ErrorReply(request, EInval, problem);
        }

        var extents = new List<ExportExtent>();
        var one = (request.Flags & CmdFlagReqOne) != 0;
        export.Extents((long)request.Offset, request.Length, one ? 1 : MaxExtentsPerReply, extents);
        var payload = new byte[StructuredReplyHeaderSize + 4 + 8 * extents.Count];
        NbdWire.WriteChunkHeader(payload, ReplyFlagDone, ReplyTypeBlockStatus, request.Handle, (uint)(4 + 8 * extents.Count));
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(StructuredReplyHeaderSize), BaseAllocationId);
        for (var i = 0; i < extents.Count; i++)
        {
            var at = payload.AsSpan(StructuredReplyHeaderSize + 4 + 8 * i);
            BinaryPrimitives.WriteUInt32BigEndian(at, extents[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(at[4..], extents[i].Flags);
        }

        return NbdReply.Of(payload);
    }

    private NbdReply ErrorReply(NbdRequestHeader request, uint errno, string message)
    {
        if (!_structured)
        {
            return SimpleReply(request.Handle, errno);
        }

        var text = System.Text.Encoding.UTF8.GetBytes(message.Length > 512 ? message[..512] : message);
        var chunk = new byte[StructuredReplyHeaderSize + 6 + text.Length];
        NbdWire.WriteChunkHeader(chunk, ReplyFlagDone, ReplyTypeError, request.Handle, (uint)(6 + text.Length));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(StructuredReplyHeaderSize), errno);
        BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(StructuredReplyHeaderSize + 4), (ushort)text.Length);
        text.CopyTo(chunk, StructuredReplyHeaderSize + 6);
        return NbdReply.Of(chunk);
    }

    private static NbdReply SimpleReply(ulong handle, uint errno)
    {
        var reply = new byte[SimpleReplyHeaderSize];
        NbdWire.WriteSimpleReply(reply, errno, handle);
        return NbdReply.Of(reply);
    }
}
