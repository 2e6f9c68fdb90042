using System.Buffers;
using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>Structured reply chunks: data, holes, block status, errors, and the final NONE.</summary>
internal sealed partial class NbdReplyReader
{
    private void OnChunk()
    {
        var chunk = NbdChunkHeader.Parse(input.Read(NbdChunkHeader.SizeAfterMagic));
        var request = Find(chunk.Handle, $"{chunk.TypeName} chunk");
        switch (chunk.Type)
        {
            case ReplyTypeNone:
                if (chunk.Length != 0)
                {
                    throw new NbdProtocolViolation(request, $"NBD_REPLY_TYPE_NONE chunk with a {chunk.Length}-byte payload");
                }

                if (!chunk.IsDone)
                {
                    throw new NbdProtocolViolation(request, "NBD_REPLY_TYPE_NONE chunk without NBD_REPLY_FLAG_DONE");
                }

                break;
            case ReplyTypeOffsetData:
                OnOffsetData(request, chunk);
                break;
            case ReplyTypeOffsetHole:
                OnOffsetHole(request, chunk);
                break;
            case ReplyTypeBlockStatus:
                OnBlockStatus(request, chunk);
                break;
            default:
                if (!chunk.IsError)
                {
                    throw new NbdProtocolViolation(request, $"unknown {chunk.TypeName} in the reply");
                }

                OnError(request, chunk);
                break;
        }

        if (chunk.IsDone)
        {
            Finish(request);
        }
    }

    private void OnOffsetData(NbdRequest request, NbdChunkHeader chunk)
    {
        if (request.Command != CmdRead)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        }

        if (chunk.Length < 9)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes (at least 9 required)");
        }

        var offset = BinaryPrimitives.ReadUInt64BigEndian(input.Read(8));
        var count = chunk.Length - 8;
        var start = CheckContent(request, chunk, offset, count);
        Receive(request, start, (int)count);
    }

    private void OnOffsetHole(NbdRequest request, NbdChunkHeader chunk)
    {
        if (request.Command != CmdRead)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        }

        if (chunk.Length != 12)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes (exactly 12 required)");
        }

        var payload = input.Read(12);
        var offset = BinaryPrimitives.ReadUInt64BigEndian(payload);
        var count = BinaryPrimitives.ReadUInt32BigEndian(payload[8..]);
        if (count == 0)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk with hole size 0");
        }

        var start = CheckContent(request, chunk, offset, count);
        ZeroFill(request, start, (int)count);
    }

    /// <summary>Content must lie inside the request and not overlap earlier content.</summary>
    private static long CheckContent(NbdRequest request, NbdChunkHeader chunk, ulong offset, uint count)
    {
        if (offset < (ulong)request.Offset || offset > (ulong)request.End || count > (ulong)request.End - offset)
        {
            throw new NbdProtocolViolation(request, $"chunk offset {offset} (length {count}) outside the request");
        }

        var start = (long)offset;
        if (!request.TryCover(start, start + count))
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk at offset {offset} (length {count}) overlaps data already received");
        }

        return start;
    }

    private void OnBlockStatus(NbdRequest request, NbdChunkHeader chunk)
    {
        if (request.Command != CmdBlockStatus)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        }

        NbdBlockStatus.CheckLength(request, chunk.Length);
        if (chunk.Length <= NbdSocketReader.BufferSize)
        {
            NbdBlockStatus.Parse(request, input.Read((int)chunk.Length), contexts);
            return;
        }

        var rented = ArrayPool<byte>.Shared.Rent((int)chunk.Length);
        try
        {
            input.ReadExactly(rented.AsSpan(0, (int)chunk.Length));
            NbdBlockStatus.Parse(request, rented.AsSpan(0, (int)chunk.Length), contexts);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private void OnError(NbdRequest request, NbdChunkHeader chunk)
    {
        if (chunk.Length > NbdErrorChunk.MaxLength)
        {
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes is implausibly large");
        }

        var error = NbdErrorChunk.Parse(chunk.Type, input.Read((int)chunk.Length), out var problem)
            ?? throw new NbdProtocolViolation(request, $"malformed {chunk.TypeName}: {problem}");
        if (error.Offset is { } offset)
        {
            if (offset < (ulong)request.Offset || offset >= (ulong)request.End)
            {
                throw new NbdProtocolViolation(request, $"{chunk.TypeName} at offset {offset}, outside the request");
            }
        }

        // Keep the first error; later ones add nothing the caller can act on.
        if (request.Errno is null)
        {
            request.Errno = error.Errno;
            request.ErrorMessage = error.Message;
            request.ErrorOffset = (long?)error.Offset;
        }
    }
}
