using System.Buffers.Binary;
using System.Text;
using VirtBackup.Core.Nbd;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Recovery;

/// <summary>The fixed-newstyle handshake, server side: greeting, client flags, then options until one enters transmission.</summary>
internal sealed partial class NbdServerSession
{
    /// <summary>Largest option payload read; a longer one ends the connection.</summary>
    private const int MaxOptionLength = 64 * 1024;

    private bool _noZeroes;
    private bool _structured;

    /// <summary>The export chosen by NBD_OPT_GO or NBD_OPT_EXPORT_NAME, or null when the client left or misbehaved.</summary>
    private async Task<INbdExport?> NegotiateAsync()
    {
        var greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, InitPasswd);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), OptsMagic);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), FlagFixedNewstyle | FlagNoZeroes);
        await SendAsync(greeting).ConfigureAwait(false);

        if (await ReadUInt32Async().ConfigureAwait(false) is not { } clientFlags)
        {
            return null;
        }

        if ((clientFlags & ~(ClientFlagFixedNewstyle | ClientFlagNoZeroes)) != 0)
        {
            log.Debug("NBD client sent unknown handshake flags 0x{Flags:x8}: closing", clientFlags);
            return null;
        }

        _noZeroes = (clientFlags & ClientFlagNoZeroes) != 0;
        var header = new byte[NbdWire.OptionHeaderSize];
        while (await ReadExactlyAsync(header).ConfigureAwait(false))
        {
            var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            var option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
            var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            if (magic != OptsMagic || length > MaxOptionLength)
            {
                log.Debug("NBD client sent a malformed option (magic 0x{Magic:x16}, length {Length}): closing", magic, length);
                return null;
            }

            var data = new byte[length];
            if (!await ReadExactlyAsync(data).ConfigureAwait(false))
            {
                return null;
            }

            var (done, export) = await HandleOptionAsync(option, data).ConfigureAwait(false);
            if (done)
            {
                return export;
            }
        }

        return null;
    }

    private async Task ReplyOptionAsync(uint option, uint type, ReadOnlyMemory<byte> data)
    {
        var message = new byte[OptionReplyHeaderSize + data.Length];
        NbdWire.WriteOptionReplyHeader(message, option, type, (uint)data.Length);
        data.CopyTo(message.AsMemory(OptionReplyHeaderSize));
        await SendAsync(message).ConfigureAwait(false);
    }

    private Task AckAsync(uint option) => ReplyOptionAsync(option, RepAck, ReadOnlyMemory<byte>.Empty);

    private Task ErrorAsync(uint option, uint error, string message) =>
        ReplyOptionAsync(option, error, Encoding.UTF8.GetBytes(message));

    private async Task SendAsync(ReadOnlyMemory<byte> bytes) =>
        await _stream.WriteAsync(bytes, _closed.Token).ConfigureAwait(false);
}
