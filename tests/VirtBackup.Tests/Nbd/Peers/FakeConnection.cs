using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>A request as the fake server received it.</summary>
internal sealed record FakeRequest(ushort Flags, ushort Type, ulong Handle, long Offset, uint Length, byte[] Payload);

/// <summary>The server side of one fake connection: read requests, send any reply bytes (valid or not).</summary>
internal sealed class FakeConnection(Socket socket) : IDisposable
{
    public const ushort Done = 1;
    public const ushort TypeNone = 0;
    public const ushort TypeOffsetData = 1;
    public const ushort TypeOffsetHole = 2;
    public const ushort TypeBlockStatus = 5;
    public const ushort TypeError = 0x8001;
    public const ushort TypeErrorOffset = 0x8002;

    private readonly NetworkStream _stream = new(socket, ownsSocket: true);

    /// <summary>The metadata contexts the handshake granted this connection, in the client's order.</summary>
    public List<string> MetaContexts { get; } = [];

    public async Task<byte[]> ReadExactAsync(int count)
    {
        var buffer = new byte[count];
        await _stream.ReadExactlyAsync(buffer);
        return buffer;
    }

    public async Task<FakeRequest> ReadRequestAsync()
    {
        var header = await ReadExactAsync(28);
        if (BinaryPrimitives.ReadUInt32BigEndian(header) != 0x25609513)
        {
            throw new InvalidOperationException("bad request magic from the client");
        }

        var type = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24));
        var payload = type == 1 ? await ReadExactAsync((int)length) : [];
        return new FakeRequest(
            BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)), type,
            BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
            (long)BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(16)), length, payload);
    }

    public async Task SendRawAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    public Task SendOptionReplyAsync(uint option, uint type, byte[] data)
    {
        var reply = new byte[20 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(reply, 0x3e889045565a9);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(16), (uint)data.Length);
        data.CopyTo(reply, 20);
        return SendRawAsync(reply);
    }

    public Task SendSimpleReplyAsync(ulong handle, uint errno, byte[]? data = null)
    {
        var reply = new byte[16 + (data?.Length ?? 0)];
        BinaryPrimitives.WriteUInt32BigEndian(reply, 0x67446698);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(4), errno);
        BinaryPrimitives.WriteUInt64BigEndian(reply.AsSpan(8), handle);
        data?.CopyTo(reply, 16);
        return SendRawAsync(reply);
    }

    /// <summary>A chunk header announcing <paramref name="length"/> payload bytes, then <paramref name="payload"/> (may be shorter).</summary>
    public Task SendChunkAsync(ulong handle, ushort type, ushort flags, byte[] payload, uint? length = null)
    {
        var chunk = new byte[20 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, 0x668e33ef);
        BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(chunk.AsSpan(8), handle);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(16), length ?? (uint)payload.Length);
        payload.CopyTo(chunk, 20);
        return SendRawAsync(chunk);
    }

    public Task SendDataAsync(ulong handle, long offset, byte[] data, bool done)
    {
        var payload = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(payload, (ulong)offset);
        data.CopyTo(payload, 8);
        return SendChunkAsync(handle, TypeOffsetData, done ? Done : (ushort)0, payload);
    }

    public Task SendHoleAsync(ulong handle, long offset, uint length, bool done)
    {
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(payload, (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), length);
        return SendChunkAsync(handle, TypeOffsetHole, done ? Done : (ushort)0, payload);
    }

    public Task SendBlockStatusAsync(ulong handle, uint contextId, bool done, params (uint Length, uint Flags)[] extents)
    {
        var payload = new byte[4 + 8 * extents.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, contextId);
        for (var i = 0; i < extents.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4 + 8 * i), extents[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8 + 8 * i), extents[i].Flags);
        }

        return SendChunkAsync(handle, TypeBlockStatus, done ? Done : (ushort)0, payload);
    }

    public Task SendErrorAsync(ulong handle, uint errno, string message, long? offset, bool done)
    {
        var text = Encoding.UTF8.GetBytes(message);
        var payload = new byte[6 + text.Length + (offset is null ? 0 : 8)];
        BinaryPrimitives.WriteUInt32BigEndian(payload, errno);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4), (ushort)text.Length);
        text.CopyTo(payload, 6);
        if (offset is { } at)
        {
            BinaryPrimitives.WriteUInt64BigEndian(payload.AsSpan(6 + text.Length), (ulong)at);
        }

        return SendChunkAsync(handle, offset is null ? TypeError : TypeErrorOffset, done ? Done : (ushort)0, payload);
    }

    public Task SendNoneAsync(ulong handle) => SendChunkAsync(handle, TypeNone, Done, []);

    /// <summary>Hard disconnect.</summary>
    public void Close() => socket.Close();

    public void Dispose() => _stream.Dispose();
}
