using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// NBD_REPLY_TYPE_BLOCK_STATUS chunks: a context id followed by (length, flags) descriptors that describe
/// consecutive ranges from the request offset. Each negotiated context must answer exactly once per request,
/// with nonzero lengths summing to at most the request length (one descriptor with REQ_ONE).
/// </summary>
internal static class NbdBlockStatus
{
    /// <summary>Largest block-status payload accepted (8 million descriptors).</summary>
    public const uint MaxPayloadLength = 64 * 1024 * 1024;

    /// <summary>Checks a chunk length before its payload is read; throws on nonsense.</summary>
    public static void CheckLength(NbdRequest request, uint length)
    {
        if (length < 12 || (length - 4) % 8 != 0)
        {
            throw new NbdProtocolViolation(request, $"block-status chunk of {length} bytes (must be 4 + a positive multiple of 8)");
        }

        var descriptors = (length - 4) / 8;
        if (length > MaxPayloadLength || descriptors > request.Length)
        {
            throw new NbdProtocolViolation(request, $"block-status chunk with {descriptors} descriptors for a {request.Length}-byte request");
        }

        if ((request.Flags & CmdFlagReqOne) != 0 && descriptors != 1)
        {
            throw new NbdProtocolViolation(request, $"block-status chunk with {descriptors} descriptors although NBD_CMD_FLAG_REQ_ONE asked for one");
        }
    }

    /// <summary>Validates one chunk and keeps its extents when it is for the context the caller asked about.</summary>
    public static void Parse(NbdRequest request, ReadOnlySpan<byte> payload, IReadOnlyDictionary<uint, string> contexts)
    {
        var contextId = BinaryPrimitives.ReadUInt32BigEndian(payload);
        if (!contexts.ContainsKey(contextId))
        {
            throw new NbdProtocolViolation(request, $"block-status chunk for context id {contextId}, which was never negotiated ({Negotiated(contexts)})");
        }

        var seen = request.ContextsSeen ??= [];
        if (seen.Contains(contextId))
        {
            throw new NbdProtocolViolation(request, $"second block-status chunk for context '{contexts[contextId]}' (id {contextId})");
        }

        seen.Add(contextId);

        var keep = contextId == request.WantedContextId;
        var extents = keep ? request.Extents ??= new List<NbdExtent>((payload.Length - 4) / 8) : null;
        var position = request.Offset;
        for (var i = 4; i < payload.Length; i += 8)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(payload[i..]);
            var flags = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 4)..]);
            if (length == 0)
            {
                throw new NbdProtocolViolation(request, $"block-status descriptor of length 0 at offset {position} for context '{contexts[contextId]}'");
            }

            if (position + length > request.End)
            {
                throw new NbdProtocolViolation(request,
                    $"block-status descriptors for context '{contexts[contextId]}' extend to offset {position + length}, beyond the end of the request");
            }

            extents?.Add(new NbdExtent(position, length, flags));
            position += length;
        }
    }

    /// <summary>On the final chunk of a successful reply: every negotiated context must have answered.</summary>
    public static void CheckComplete(NbdRequest request, IReadOnlyDictionary<uint, string> contexts)
    {
        var missing = contexts.Keys.Where(id => request.ContextsSeen?.Contains(id) != true).ToList();
        if (missing.Count > 0)
        {
            throw new NbdProtocolViolation(request,
                $"the reply ended without block status for context {string.Join(", ", missing.Select(id => $"'{contexts[id]}' (id {id})"))}");
        }
    }

    private static string Negotiated(IReadOnlyDictionary<uint, string> contexts) =>
        "negotiated: " + string.Join(", ", contexts.Select(c => $"{c.Key} = {c.Value}"));
}
