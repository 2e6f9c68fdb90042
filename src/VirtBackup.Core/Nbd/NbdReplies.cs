using System.Buffers.Binary;
using System.Text;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>Simple reply after its magic: error and handle.</summary>
internal readonly record struct NbdSimpleReply(uint Errno, ulong Handle)
{
    public const int SizeAfterMagic = SimpleReplyHeaderSize - 4;

    public static NbdSimpleReply Parse(ReadOnlySpan<byte> afterMagic) =>
        new(BinaryPrimitives.ReadUInt32BigEndian(afterMagic), BinaryPrimitives.ReadUInt64BigEndian(afterMagic[4..]));
}

/// <summary>Structured reply chunk header after its magic: flags, type, handle, payload length.</summary>
internal readonly record struct NbdChunkHeader(ushort Flags, ushort Type, ulong Handle, uint Length)
{
    public const int SizeAfterMagic = StructuredReplyHeaderSize - 4;

    public bool IsDone => (Flags & ReplyFlagDone) != 0;

    public bool IsError => (Type & ReplyTypeErrorBit) != 0;

    public string TypeName => Type switch
    {
        ReplyTypeNone => "NBD_REPLY_TYPE_NONE",
        ReplyTypeOffsetData => "NBD_REPLY_TYPE_OFFSET_DATA",
        ReplyTypeOffsetHole => "NBD_REPLY_TYPE_OFFSET_HOLE",
        ReplyTypeBlockStatus => "NBD_REPLY_TYPE_BLOCK_STATUS",
        ReplyTypeError => "NBD_REPLY_TYPE_ERROR",
        ReplyTypeErrorOffset => "NBD_REPLY_TYPE_ERROR_OFFSET",
        _ => $"chunk type {Type}",
    };

    public static NbdChunkHeader Parse(ReadOnlySpan<byte> afterMagic) => new(
        BinaryPrimitives.ReadUInt16BigEndian(afterMagic),
        BinaryPrimitives.ReadUInt16BigEndian(afterMagic[2..]),
        BinaryPrimitives.ReadUInt64BigEndian(afterMagic[4..]),
        BinaryPrimitives.ReadUInt32BigEndian(afterMagic[12..]));
}

/// <summary>The payload of an error chunk: error number, optional message, and the offset for ERROR_OFFSET.</summary>
internal readonly record struct NbdErrorChunk(uint Errno, string Message, ulong? Offset)
{
    /// <summary>Largest error chunk payload accepted (message up to 64 KiB plus fields).</summary>
    public const int MaxLength = 65535 + 14;

    /// <summary>Parses an error chunk; returns null with a problem description when it is malformed.</summary>
    public static NbdErrorChunk? Parse(ushort type, ReadOnlySpan<byte> payload, out string? problem)
    {
        problem = null;
        if (payload.Length < 6)
        {
            problem = $"error chunk of {payload.Length} bytes (at least 6 required)";
            return null;
        }

        var errno = BinaryPrimitives.ReadUInt32BigEndian(payload);
        var messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
        var fixedTail = type == ReplyTypeErrorOffset ? 8 : 0;
        if (messageLength > payload.Length - 6 - fixedTail)
        {
            problem = $"error message length {messageLength} does not fit in the {payload.Length}-byte chunk";
            return null;
        }

        if (type == ReplyTypeErrorOffset && payload.Length != 6 + messageLength + 8)
        {
            problem = $"NBD_REPLY_TYPE_ERROR_OFFSET chunk of {payload.Length} bytes for a {messageLength}-byte message";
            return null;
        }

        if (errno == 0)
        {
            problem = "error chunk with error number 0";
            return null;
        }

        var message = Encoding.UTF8.GetString(payload.Slice(6, messageLength)).Trim();
        ulong? offset = type == ReplyTypeErrorOffset ? BinaryPrimitives.ReadUInt64BigEndian(payload[(6 + messageLength)..]) : null;
        return new NbdErrorChunk(errno, message, offset);
    }
}

/// <summary>The server broke the protocol; the connection cannot continue.</summary>
internal sealed class NbdProtocolViolation(NbdRequest? request, string problem) : Exception(problem)
{
    /// <summary>The request whose reply was invalid, when known.</summary>
    public NbdRequest? Request { get; } = request;

    public string Problem { get; } = problem;
}
