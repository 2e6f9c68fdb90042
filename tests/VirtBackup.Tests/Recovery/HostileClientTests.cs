using VirtBackup.Core.Recovery;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Tests.Recovery;

/// <summary>Clients that break the rules get NBD errors or a closed connection; the others go on being served.</summary>
public sealed class HostileClientTests
{
    [Fact(Timeout = 60000)]
    public async Task Writes_trims_and_zeroing_get_EPERM_and_the_connection_goes_on()
    {
        await using var chain = await ServedChain.StartAsync();
        using var c = await RawNbdConnection.OpenAsync(chain.Socket, "vda");

        await c.SendRequestAsync(CmdWrite, 1, 0, 4096);
        await c.SendAsync(new byte[4096]);
        await c.SendRequestAsync(CmdTrim, 2, 0, 4096);
        await c.SendRequestAsync(CmdWriteZeroes, 3, 0, 4096);
        var errors = await c.ReceiveErrorsAsync(3);

        Assert.Equal([1UL, 2UL, 3UL], errors.Keys);
        Assert.Equal([EPerm, EPerm, EPerm], errors.Values);
        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task Reads_past_the_end_of_zero_length_and_of_huge_length_get_EINVAL()
    {
        await using var chain = await ServedChain.StartAsync();
        using var c = await RawNbdConnection.OpenAsync(chain.Socket, "vda", structured: false);
        long size = chain.Expected["vda"].Length;

        await c.SendRequestAsync(CmdRead, 1, (ulong)size - 10, 11);
        await c.SendRequestAsync(CmdRead, 2, ulong.MaxValue - 5, 100);
        await c.SendRequestAsync(CmdRead, 3, 0, 0);
        await c.SendRequestAsync(CmdRead, 4, 0, uint.MaxValue);
        await c.SendRequestAsync(CmdBlockStatus, 5, 0, 4096);
        await c.SendRequestAsync(77, 6, 0, 4096);
        var errors = await c.ReceiveErrorsAsync(6, structured: false);

        Assert.Equal([1UL, 2UL, 3UL, 4UL, 5UL, 6UL], errors.Keys);
        Assert.Equal([EInval, EInval, EInval, EInval, EInval, EInval], errors.Values);
        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task A_request_with_a_bad_magic_or_a_huge_write_payload_closes_only_that_connection()
    {
        await using var chain = await ServedChain.StartAsync();
        using var badMagic = await RawNbdConnection.OpenAsync(chain.Socket, "vda");
        using var hugeWrite = await RawNbdConnection.OpenAsync(chain.Socket, "vda");

        await badMagic.SendRequestAsync(CmdRead, 1, 0, 512, magic: 0xdeadbeef);
        await hugeWrite.SendRequestAsync(CmdWrite, 1, 0, uint.MaxValue);

        Assert.True(await badMagic.IsClosedByServerAsync());
        Assert.True(await hugeWrite.IsClosedByServerAsync());
        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task Garbage_in_the_handshake_and_oversized_or_malformed_options_are_answered_or_cut_off()
    {
        await using var chain = await ServedChain.StartAsync();
        using var garbage = await RawNbdConnection.ConnectAsync(chain.Socket);
        await garbage.ReceiveAsync(18);
        await garbage.SendAsync([0xff, 0xff, 0xff, 0xff]); // unknown client flags
        using var oversized = await RawNbdConnection.ConnectAsync(chain.Socket);
        await oversized.ReceiveAsync(18);
        await oversized.SendAsync([0, 0, 0, 3]);
        await oversized.SendOptionAsync(OptGo, []); // header says 0 bytes: malformed GO
        var reply = await oversized.ReceiveAsync(OptionReplyHeaderSize);
        await oversized.ReceiveAsync((int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(16)));
        var header = new byte[NbdWire.OptionHeaderSize];
        NbdWire.WriteOptionHeader(header, OptGo, 100_000_000);
        await oversized.SendAsync(header);

        Assert.True(await garbage.IsClosedByServerAsync());
        Assert.Equal(RepErrInvalid, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(12)));
        Assert.True(await oversized.IsClosedByServerAsync());
        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task Clients_that_vanish_mid_reply_leave_the_server_serving_the_others()
    {
        await using var chain = await ServedChain.StartAsync();
        for (var i = 0; i < 20; i++)
        {
            using var c = await RawNbdConnection.OpenAsync(chain.Socket, "vda");
            for (ulong h = 0; h < 32; h++)
            {
                await c.SendRequestAsync(CmdRead, h, 0, (uint)chain.Expected["vda"].Length);
            }

            await c.ReceiveAsync(100); // part of the first reply, then gone
        }

        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task Three_hundred_idle_connections_do_not_keep_a_reader_out()
    {
        await using var chain = await ServedChain.StartAsync();
        var idle = new List<RawNbdConnection>();
        for (var i = 0; i < 300; i++)
        {
            idle.Add(await RawNbdConnection.ConnectAsync(chain.Socket));
        }

        await AssertServesAsync(chain);
        foreach (var c in idle)
        {
            c.Dispose();
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Two_hundred_connections_reading_at_once_each_get_their_own_bytes()
    {
        await using var chain = await ServedChain.StartAsync();
        var expected = chain.Expected["vda"];
        var uri = NbdUri.Parse(chain.Uri("vda"));
        var clients = new List<NbdClient>();
        for (var i = 0; i < 200; i++)
        {
            // One at a time: our client's handshake blocks a pool thread, 200 at once would starve the pool.
            clients.Add(await NbdClient.ConnectAsync(uri));
        }

        var reads = await Task.WhenAll(clients.Select(async (client, i) =>
        {
            await using var _ = client;
            var offset = i * 997 % (expected.Length - 70_000);
            var buffer = new byte[70_000];
            await client.ReadAsync(offset, buffer);
            return (Offset: offset, Right: buffer.AsSpan().SequenceEqual(expected.AsSpan(offset, buffer.Length)));
        }));

        Assert.Empty(reads.Where(r => !r.Right).Select(r => r.Offset));
    }

    [Fact(Timeout = 60000)]
    public async Task Connections_past_the_limit_of_1024_are_closed_as_they_arrive_and_a_reader_gets_in_once_one_leaves()
    {
        await using var chain = await ServedChain.StartAsync();
        var open = new List<RawNbdConnection>();
        for (var i = 0; i < NbdServerLimits.Default.MaxConnections; i++)
        {
            open.Add(await RawNbdConnection.ConnectAsync(chain.Socket));
            await open[^1].ReceiveAsync(18); // accepted: the greeting came
        }

        using var extra = await RawNbdConnection.ConnectAsync(chain.Socket);

        Assert.True(await extra.IsClosedByServerAsync());
        Assert.Contains("Warning refusing an NBD connection: 1024 are open already", Snapshot(chain.LogLines));
        open[0].Dispose();
        await WaitUntilServedAsync(chain);
        foreach (var c in open)
        {
            c.Dispose();
        }
    }

    [Fact(Timeout = 60000)]
    public async Task A_client_that_does_not_finish_its_handshake_in_time_is_cut_off_and_the_others_are_served()
    {
        await using var chain = await ServedChain.StartAsync(limits: new NbdServerLimits { HandshakeTimeout = TimeSpan.FromSeconds(1) });
        using var slow = await RawNbdConnection.ConnectAsync(chain.Socket);
        await slow.ReceiveAsync(18);
        await slow.SendAsync([0, 0, 0, 3]); // client flags, then nothing more

        Assert.True(await slow.IsClosedByServerAsync());
        await AssertServesAsync(chain);
    }

    [Fact(Timeout = 60000)]
    public async Task Clients_that_vanish_mid_request_mid_write_payload_or_mid_option_end_only_their_own_connection()
    {
        await using var chain = await ServedChain.StartAsync();
        using (var halfRequest = await RawNbdConnection.OpenAsync(chain.Socket, "vda"))
        using (var halfPayload = await RawNbdConnection.OpenAsync(chain.Socket, "vda"))
        using (var halfOption = await RawNbdConnection.ConnectAsync(chain.Socket))
        {
            await halfRequest.SendAsync([0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0]); // 8 of a request's 28 bytes
            await halfPayload.SendRequestAsync(CmdWrite, 1, 0, 65536);
            await halfPayload.SendAsync(new byte[1000]);
            await halfOption.ReceiveAsync(18);
            await halfOption.SendAsync([0, 0, 0, 3, 0x49, 0x48, 0x41, 0x56]); // flags, then half an option magic
        }

        await AssertServesAsync(chain);
        await AssertServesAsync(chain);
    }

    private static async Task AssertServesAsync(ServedChain chain)
    {
        await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")));
        var buffer = new byte[client.ExportSize];
        await client.ReadAsync(0, buffer);
        Assert.True(buffer.AsSpan().SequenceEqual(chain.Expected["vda"]));
    }

    /// <summary>A reader gets the whole disk once the server has noticed a connection that left (it may take a moment).</summary>
    private static async Task WaitUntilServedAsync(ServedChain chain)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await AssertServesAsync(chain);
                return;
            }
            catch (Exception e) when ((e is NbdException or IOException or System.Net.Sockets.SocketException) && clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(50);
            }
        }
    }

    private static List<string> Snapshot(List<string> lines)
    {
        lock (lines)
        {
            return [.. lines];
        }
    }
}
