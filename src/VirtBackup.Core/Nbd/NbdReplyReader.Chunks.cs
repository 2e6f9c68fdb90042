using System.Buffers;
using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>Structured reply chunks: data, holes, block status, errors, and the final NONE.</summary>
internal sealed partial class NbdReplyReader
{
    private async Task OnChunkAsync(CancellationToken ct)
    {
        var chunk = NbdChunkHeader.Parse((await input.ReadAsync(NbdChunkHeader.SizeAfterMagic, ct).ConfigureAwait(false)).Span);
        var request = Find(chunk.Handle, $"{chunk.TypeName} chunk");
        switch (chunk.Type)
        {
            case ReplyTypeNone:
                if (chunk.Length != 0)
                    throw new NbdProtocolViolation(request, $"NBD_REPLY_TYPE_NONE chunk with a {chunk.Length}-byte payload");
                if (!chunk.IsDone)
                    throw new NbdProtocolViolation(request, "NBD_REPLY_TYPE_NONE chunk without NBD_REPLY_FLAG_DONE");
                break;
            case ReplyTypeOffsetData:
                await OnOffsetDataAsync(request, chunk, ct).ConfigureAwait(false);
                break;
            case ReplyTypeOffsetHole:
                await OnOffsetHoleAsync(request, chunk, ct).ConfigureAwait(false);
                break;
            case ReplyTypeBlockStatus:
                await OnBlockStatusAsync(request, chunk, ct).ConfigureAwait(false);
                break;
            default:
                if (!chunk.IsError)
                    throw new NbdProtocolViolation(request, $"unknown {chunk.TypeName} in the reply");
                await OnErrorAsync(request, chunk, ct).ConfigureAwait(false);
                break;
        }

        if (chunk.IsDone)
            Finish(request);
    }

    private async Task OnOffsetDataAsync(NbdRequest request, NbdChunkHeader chunk, CancellationToken ct)
    {
        if (request.Command != CmdRead)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        if (chunk.Length < 9)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes (at least 9 required)");
        var offset = BinaryPrimitives.ReadUInt64BigEndian((await input.ReadAsync(8, ct).ConfigureAwait(false)).Span);
        var count = chunk.Length - 8;
        var start = CheckContent(request, chunk, offset, count);
        await ReceiveAsync(request, start, (int)count, ct).ConfigureAwait(false);
    }

    private async Task OnOffsetHoleAsync(NbdRequest request, NbdChunkHeader chunk, CancellationToken ct)
    {
        if (request.Command != CmdRead)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        if (chunk.Length != 12)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes (exactly 12 required)");
        var payload = (await input.ReadAsync(12, ct).ConfigureAwait(false)).Span;
        var offset = BinaryPrimitives.ReadUInt64BigEndian(payload);
        var count = BinaryPrimitives.ReadUInt32BigEndian(payload[8..]);
        if (count == 0)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk with hole size 0");
        var start = CheckContent(request, chunk, offset, count);
        ZeroFill(request, start, (int)count);
    }

    /// <summary>Content must lie inside the request and not overlap earlier content.</summary>
    private static long CheckContent(NbdRequest request, NbdChunkHeader chunk, ulong offset, uint count)
    {
        if (offset < (ulong)request.Offset || offset > (ulong)request.End || count > (ulong)request.End - offset)
            throw new NbdProtocolViolation(request, $"chunk offset {offset} (length {count}) outside the request");
        var start = (long)offset;
        if (!request.TryCover(start, start + count))
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk at offset {offset} (length {count}) overlaps data already received");
        return start;
    }

    private async Task OnBlockStatusAsync(NbdRequest request, NbdChunkHeader chunk, CancellationToken ct)
    {
        if (request.Command != CmdBlockStatus)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk in the reply to {request.Name}");
        NbdBlockStatus.CheckLength(request, chunk.Length);
        if (chunk.Length <= NbdSocketReader.BufferSize)
        {
            var payload = await input.ReadAsync((int)chunk.Length, ct).ConfigureAwait(false);
            NbdBlockStatus.Parse(request, payload.Span, contexts);
            return;
        }

        var rented = ArrayPool<byte>.Shared.Rent((int)chunk.Length);
        try
        {
            await input.ReadExactlyAsync(rented.AsMemory(0, (int)chunk.Length), ct).ConfigureAwait(false);
            NbdBlockStatus.Parse(request, rented.AsSpan(0, (int)chunk.Length), contexts);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task OnErrorAsync(NbdRequest request, NbdChunkHeader chunk, CancellationToken ct)
    {
        if (chunk.Length > NbdErrorChunk.MaxLength)
            throw new NbdProtocolViolation(request, $"{chunk.TypeName} chunk of {chunk.Length} bytes is implausibly large");
        var payload = await input.ReadAsync((int)chunk.Length, ct).ConfigureAwait(false);
        var error = NbdErrorChunk.Parse(chunk.Type, payload.Span, out var problem)
            ?? throw new NbdProtocolViolation(request, $"malformed {chunk.TypeName}: {problem}");
        if (error.Offset is { } offset)
        {
            if (offset < (ulong)request.Offset || offset >= (ulong)request.End)
                throw new NbdProtocolViolation(request, $"{chunk.TypeName} at offset {offset}, outside the request");
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
