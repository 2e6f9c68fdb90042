using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Tests.Recovery;

/// <summary>A client that writes whatever bytes a test wants (with the shared wire encodings), to play a hostile peer.</summary>
internal sealed class RawNbdConnection : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    private RawNbdConnection()
    {
    }

    public static async Task<RawNbdConnection> ConnectAsync(string socketPath)
    {
        var connection = new RawNbdConnection();
        await connection._socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        return connection;
    }

    /// <summary>Greeting, client flags, optionally structured replies, then NBD_OPT_GO for <paramref name="export"/>.</summary>
    public static async Task<RawNbdConnection> OpenAsync(string socketPath, string export, bool structured = true)
    {
        var c = await ConnectAsync(socketPath);
        await c.ReceiveAsync(18);
        await c.SendAsync(new byte[] { 0, 0, 0, (byte)(ClientFlagFixedNewstyle | ClientFlagNoZeroes) });
        if (structured)
        {
            await c.SendOptionAsync(OptStructuredReply, []);
            await c.ReceiveAsync(OptionReplyHeaderSize);
        }

        var name = Encoding.UTF8.GetBytes(export);
        var go = new byte[4 + name.Length + 2];
        BinaryPrimitives.WriteUInt32BigEndian(go, (uint)name.Length);
        name.CopyTo(go, 4);
        await c.SendOptionAsync(OptGo, go);
        while (true)
        {
            var header = await c.ReceiveAsync(OptionReplyHeaderSize);
            var type = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            await c.ReceiveAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
            if (type == RepAck)
            {
                return c;
            }

            if ((type & RepFlagError) != 0)
            {
                throw new InvalidOperationException($"NBD_OPT_GO refused: 0x{type:x8}");
            }
        }
    }

    public Task SendOptionAsync(uint option, byte[] data)
    {
        var message = new byte[NbdWire.OptionHeaderSize + data.Length];
        NbdWire.WriteOptionHeader(message, option, (uint)data.Length);
        data.CopyTo(message, NbdWire.OptionHeaderSize);
        return SendAsync(message);
    }

    public Task SendRequestAsync(ushort command, ulong handle, ulong offset, uint length, ushort flags = 0, uint magic = RequestMagic)
    {
        var header = new byte[RequestHeaderSize];
        new NbdRequestHeader(magic, flags, command, handle, offset, length).Write(header);
        return SendAsync(header);
    }

    public async Task SendAsync(byte[] bytes) => await _socket.SendAsync(bytes);

    /// <summary>Exactly <paramref name="count"/> bytes, or fewer if the server closes first.</summary>
    public async Task<byte[]> ReceiveAsync(int count)
    {
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(done));
            if (n == 0)
            {
                return buffer[..done];
            }

            done += n;
        }

        return buffer;
    }

    /// <summary>
    /// The errors of the next <paramref name="count"/> replies (structured error chunks, or simple replies), by
    /// handle: replies to pipelined requests may come in any order.
    /// </summary>
    public async Task<SortedDictionary<ulong, uint>> ReceiveErrorsAsync(int count, bool structured = true)
    {
        var errors = new SortedDictionary<ulong, uint>();
        for (var i = 0; i < count; i++)
        {
            if (!structured)
            {
                var simple = await ReceiveAsync(SimpleReplyHeaderSize);
                Assert.Equal(SimpleReplyMagic, BinaryPrimitives.ReadUInt32BigEndian(simple));
                errors.Add(BinaryPrimitives.ReadUInt64BigEndian(simple.AsSpan(8)), BinaryPrimitives.ReadUInt32BigEndian(simple.AsSpan(4)));
                continue;
            }

            var header = await ReceiveAsync(StructuredReplyHeaderSize);
            Assert.Equal(StructuredReplyMagic, BinaryPrimitives.ReadUInt32BigEndian(header));
            Assert.Equal(ReplyTypeError, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)));
            var payload = await ReceiveAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
            errors.Add(BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)), BinaryPrimitives.ReadUInt32BigEndian(payload));
        }

        return errors;
    }

    /// <summary>True when the server has closed the connection (a receive returns end of stream).</summary>
    public async Task<bool> IsClosedByServerAsync()
    {
        var buffer = new byte[64];
        try
        {
            while (true)
            {
                if (await _socket.ReceiveAsync(buffer) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public void Dispose() => _socket.Dispose();
}
