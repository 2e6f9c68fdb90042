using System.Buffers.Binary;
using VirtBackup.Core.Nbd;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Transmission, server side: the request loop reads requests one after another and answers each on its own task
/// (several at once, so pipelined requests overlap), every reply written whole under one lock. Writes, trims and
/// zeroing get EPERM (the export is read-only); a request that breaks the framing (bad magic, a write payload past
/// the limit) ends the connection, since nothing after it can be trusted.
/// </summary>
internal sealed partial class NbdServerSession
{
    private const int MaxExtentsPerReply = 2048;
    private static readonly byte[] Zeros = new byte[256 * 1024];

    private readonly SemaphoreSlim _sendLock = new(1, 1);

    private async Task TransmitAsync(INbdExport export)
    {
        var inFlight = new SemaphoreSlim(limits.RequestsInFlight, limits.RequestsInFlight);
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
                pending.Add(AnswerAsync(export, request).ContinueWith(
                    static (_, s) => ((SemaphoreSlim)s!).Release(), inFlight, CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default));
            }
        }
        finally
        {
            // NBD_CMD_DISC: answer what is in flight, then hang up.
            await Task.WhenAll(pending).ConfigureAwait(false);
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

    /// <summary>Answers one request; a client that went away closes the connection, nothing escapes.</summary>
    private async Task AnswerAsync(INbdExport export, NbdRequestHeader request)
    {
        try
        {
            await Task.Yield();
            switch (request.Command)
            {
                case CmdRead:
                    await ReadAsync(export, request).ConfigureAwait(false);
                    break;
                case CmdBlockStatus:
                    await BlockStatusAsync(export, request).ConfigureAwait(false);
                    break;
                case CmdWrite or CmdTrim or CmdWriteZeroes:
                    await ErrorReplyAsync(request, EPerm, "the export is read-only (a backup)").ConfigureAwait(false);
                    break;
                case CmdFlush or CmdCache:
                    await SimpleReplyAsync(request.Handle, 0).ConfigureAwait(false);
                    break;
                default:
                    await ErrorReplyAsync(request, EInval, $"unknown command {request.Command}").ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception e)
        {
            // The client vanished mid-reply, or the connection is being closed: nothing more can be said to it.
            log.Debug("NBD connection closed while answering {Command}: {Message}", CommandName(request.Command), e.Message);
            Close();
        }
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

    private async Task ReadAsync(INbdExport export, NbdRequestHeader request)
    {
        if (RangeProblem(export, request, limits.MaxRead) is { } problem)
        {
            await ErrorReplyAsync(request, EInval, problem).ConfigureAwait(false);
            return;
        }

        ExportRead read;
        try
        {
            read = await export.ReadAsync((long)request.Offset, (int)request.Length).ConfigureAwait(false);
        }
        catch (ExportReadException e)
        {
            await ErrorReplyAsync(request, EIo, e.Message).ConfigureAwait(false);
            return;
        }

        using (read)
        {
            await _sendLock.WaitAsync(_closed.Token).ConfigureAwait(false);
            try
            {
                if (_structured)
                {
                    await SendChunksAsync(request.Handle, read.Pieces).ConfigureAwait(false);
                }
                else
                {
                    await SendSimpleDataAsync(request.Handle, read.Pieces).ConfigureAwait(false);
                }
            }
            finally
            {
                _sendLock.Release();
            }
        }
    }

    private async Task SendChunksAsync(ulong handle, IReadOnlyList<ExportPiece> pieces)
    {
        var header = new byte[StructuredReplyHeaderSize + 12];
        for (var i = 0; i < pieces.Count; i++)
        {
            var piece = pieces[i];
            var flags = i == pieces.Count - 1 ? ReplyFlagDone : (ushort)0;
            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(StructuredReplyHeaderSize), (ulong)piece.Offset);
            if (piece.IsZero)
            {
                NbdWire.WriteChunkHeader(header, flags, ReplyTypeOffsetHole, handle, 12);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(StructuredReplyHeaderSize + 8), (uint)piece.Length);
                await SendAsync(header).ConfigureAwait(false);
            }
            else
            {
                NbdWire.WriteChunkHeader(header, flags, ReplyTypeOffsetData, handle, (uint)(8 + piece.Length));
                await SendAsync(header.AsMemory(0, StructuredReplyHeaderSize + 8)).ConfigureAwait(false);
                await SendAsync(piece.Data).ConfigureAwait(false);
            }
        }
    }

    private async Task SendSimpleDataAsync(ulong handle, IReadOnlyList<ExportPiece> pieces)
    {
        var header = new byte[SimpleReplyHeaderSize];
        NbdWire.WriteSimpleReply(header, 0, handle);
        await SendAsync(header).ConfigureAwait(false);
        foreach (var piece in pieces)
        {
            if (!piece.IsZero)
            {
                await SendAsync(piece.Data).ConfigureAwait(false);
                continue;
            }

            for (var left = piece.Length; left > 0; left -= Zeros.Length)
            {
                await SendAsync(Zeros.AsMemory(0, Math.Min(left, Zeros.Length))).ConfigureAwait(false);
            }
        }
    }

    private async Task BlockStatusAsync(INbdExport export, NbdRequestHeader request)
    {
        if (!_baseAllocation || !_structured)
        {
            await ErrorReplyAsync(request, EInval, "no metadata context was negotiated (NBD_OPT_SET_META_CONTEXT base:allocation)").ConfigureAwait(false);
            return;
        }

        if (RangeProblem(export, request, uint.MaxValue) is { } problem)
        {
            await ErrorReplyAsync(request, EInval, problem).ConfigureAwait(false);
            return;
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

        await SendWholeAsync(payload).ConfigureAwait(false);
    }

    private async Task ErrorReplyAsync(NbdRequestHeader request, uint errno, string message)
    {
        if (!_structured)
        {
            await SimpleReplyAsync(request.Handle, errno).ConfigureAwait(false);
            return;
        }

        var text = System.Text.Encoding.UTF8.GetBytes(message.Length > 512 ? message[..512] : message);
        var chunk = new byte[StructuredReplyHeaderSize + 6 + text.Length];
        NbdWire.WriteChunkHeader(chunk, ReplyFlagDone, ReplyTypeError, request.Handle, (uint)(6 + text.Length));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(StructuredReplyHeaderSize), errno);
        BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(StructuredReplyHeaderSize + 4), (ushort)text.Length);
        text.CopyTo(chunk, StructuredReplyHeaderSize + 6);
        await SendWholeAsync(chunk).ConfigureAwait(false);
    }

    private Task SimpleReplyAsync(ulong handle, uint errno)
    {
        var reply = new byte[SimpleReplyHeaderSize];
        NbdWire.WriteSimpleReply(reply, errno, handle);
        return SendWholeAsync(reply);
    }

    private async Task SendWholeAsync(byte[] message)
    {
        await _sendLock.WaitAsync(_closed.Token).ConfigureAwait(false);
        try
        {
            await SendAsync(message).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }
}
