using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>What a fake server does with one option during the handshake.</summary>
internal enum FakeOptionOutcome
{
    NotHandled,
    Handled,
    EnterTransmission,
}

/// <summary>
/// A tiny in-process NBD server on a unix socket: it completes a configurable fixed-newstyle handshake and
/// then hands the connection to a scenario that can answer requests correctly or in hostile ways.
/// </summary>
internal sealed class FakeNbdServer : IAsyncDisposable
{
    public const ushort DefaultFlags = 1 | 4; // HAS_FLAGS | SEND_FLUSH

    private readonly TempDir _dir = new();
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly List<FakeConnection> _connections = [];
    private Task _acceptLoop = Task.CompletedTask;

    public FakeNbdServer(Func<FakeConnection, Task> transmission) => Transmission = transmission;

    public NbdUri Uri => NbdUri.Unix(_dir.File("fake.sock"));

    public long ExportSize { get; init; } = 1024 * 1024;
    public ushort TransmissionFlags { get; init; } = DefaultFlags;
    public bool StructuredReplies { get; init; } = true;
    public bool SendGreeting { get; init; } = true;
    public Dictionary<string, uint> Contexts { get; init; } = new() { ["base:allocation"] = 7 };
    public (uint Min, uint Preferred, uint Max)? BlockSize { get; init; }

    /// <summary>Overrides the default handling of an option (to misbehave during the handshake).</summary>
    public Func<FakeConnection, uint, byte[], Task<FakeOptionOutcome>>? OptionHook { get; init; }

    public Func<FakeConnection, Task> Transmission { get; }

    /// <summary>Everything that went wrong on the server side (assertions in scenarios).</summary>
    public List<Exception> Failures { get; } = [];

    /// <summary>The connections accepted so far, in order.</summary>
    public IReadOnlyList<FakeConnection> Connections
    {
        get
        {
            lock (_connections)
            {
                return [.. _connections];
            }
        }
    }

    public FakeNbdServer Start()
    {
        _listener.Bind(new UnixDomainSocketEndPoint(Uri.SocketPath!));
        _listener.Listen();
        _acceptLoop = Task.Run(AcceptLoopAsync);
        return this;
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            var connection = new FakeConnection(socket);
            lock (_connections)
            {
                _connections.Add(connection);
            }

            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(FakeConnection connection)
    {
        try
        {
            if (!SendGreeting)
            {
                await connection.ReadExactAsync(1 << 20); // say nothing, keep the connection open
                return;
            }

            if (await HandshakeAsync(connection))
            {
                await Transmission(connection);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
        {
            // The client hung up; that is what many scenarios expect.
        }
        catch (Exception e)
        {
            lock (Failures)
            {
                Failures.Add(e);
            }
        }
        finally
        {
            connection.Dispose(); // the scenario is over: hang up
        }
    }

    private async Task<bool> HandshakeAsync(FakeConnection c)
    {
        var greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, 0x4e42444d41474943);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), 0x49484156454F5054);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), 3);
        await c.SendRawAsync(greeting);
        await c.ReadExactAsync(4); // client flags
        while (true)
        {
            var header = await c.ReadExactAsync(16);
            var option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
            var data = await c.ReadExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12)));
            var outcome = OptionHook is null ? FakeOptionOutcome.NotHandled : await OptionHook(c, option, data);
            if (outcome == FakeOptionOutcome.EnterTransmission)
            {
                return true;
            }

            if (outcome == FakeOptionOutcome.Handled)
            {
                continue;
            }

            switch (option)
            {
                case 8: // STRUCTURED_REPLY
                    await c.SendOptionReplyAsync(option, StructuredReplies ? 1u : 0x80000001u, []);
                    break;
                case 10: // SET_META_CONTEXT
                    c.MetaContexts.Clear(); // the last SET_META_CONTEXT counts
                    foreach (var query in ParseQueries(data))
                    {
                        if (!Contexts.TryGetValue(query, out var id))
                        {
                            continue;
                        }

                        c.MetaContexts.Add(query);

                        var reply = new byte[4 + Encoding.UTF8.GetByteCount(query)];
                        BinaryPrimitives.WriteUInt32BigEndian(reply, id);
                        Encoding.UTF8.GetBytes(query, reply.AsSpan(4));
                        await c.SendOptionReplyAsync(option, 4, reply);
                    }

                    await c.SendOptionReplyAsync(option, 1, []);
                    break;
                case 7: // GO
                    var export = new byte[12];
                    BinaryPrimitives.WriteUInt64BigEndian(export.AsSpan(2), (ulong)ExportSize);
                    BinaryPrimitives.WriteUInt16BigEndian(export.AsSpan(10), TransmissionFlags);
                    await c.SendOptionReplyAsync(option, 3, export);
                    if (BlockSize is { } sizes)
                    {
                        var info = new byte[14];
                        BinaryPrimitives.WriteUInt16BigEndian(info, 3);
                        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(2), sizes.Min);
                        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(6), sizes.Preferred);
                        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(10), sizes.Max);
                        await c.SendOptionReplyAsync(option, 3, info);
                    }

                    await c.SendOptionReplyAsync(option, 1, []);
                    return true;
                case 2: // ABORT
                    await c.SendOptionReplyAsync(option, 1, []);
                    return false;
                default:
                    await c.SendOptionReplyAsync(option, 0x80000001, []);
                    break;
            }
        }
    }

    private static IEnumerable<string> ParseQueries(byte[] data)
    {
        var position = 4 + (int)BinaryPrimitives.ReadUInt32BigEndian(data);
        var count = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(position));
        position += 4;
        for (var i = 0; i < count; i++)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(position));
            yield return Encoding.UTF8.GetString(data, position + 4, length);
            position += 4 + length;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _acceptLoop;
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        _dir.Dispose();
    }
}
