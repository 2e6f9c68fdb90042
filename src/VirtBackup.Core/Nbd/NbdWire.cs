using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>A transmission request header: what the client writes and the server parses (28 bytes).</summary>
internal readonly record struct NbdRequestHeader(uint Magic, ushort Flags, ushort Command, ulong Handle, ulong Offset, uint Length)
{
    public static NbdRequestHeader Parse(ReadOnlySpan<byte> header) => new(
        BinaryPrimitives.ReadUInt32BigEndian(header),
        BinaryPrimitives.ReadUInt16BigEndian(header[4..]),
        BinaryPrimitives.ReadUInt16BigEndian(header[6..]),
        BinaryPrimitives.ReadUInt64BigEndian(header[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(header[16..]),
        BinaryPrimitives.ReadUInt32BigEndian(header[24..]));

    public void Write(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, Magic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], Flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], Command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], Handle);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], Length);
    }

    public static NbdRequestHeader For(ushort command, ushort flags, ulong handle, long offset, uint length) =>
        new(RequestMagic, flags, command, handle, (ulong)offset, length);
}

/// <summary>
/// The encodings of the messages a server writes (the client parses them in <see cref="NbdSimpleReply"/>,
/// <see cref="NbdChunkHeader"/> and the handshake): one place, so both sides agree byte for byte.
/// </summary>
internal static class NbdWire
{
    public static void WriteSimpleReply(Span<byte> header, uint errno, ulong handle)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], errno);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
    }

    public static void WriteChunkHeader(Span<byte> header, ushort flags, ushort type, ulong handle, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], type);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], length);
    }

    /// <summary>The option request a client sends: IHAVEOPT, option, length (the data follows).</summary>
    public static void WriteOptionHeader(Span<byte> header, uint option, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(header, OptsMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], length);
    }

    public static void WriteOptionReplyHeader(Span<byte> header, uint option, uint type, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(header, OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], type);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], length);
    }

    public const int OptionHeaderSize = 16;
}
