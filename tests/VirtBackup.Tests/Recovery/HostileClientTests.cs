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

    private static async Task AssertServesAsync(ServedChain chain)
    {
        await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")));
        var buffer = new byte[client.ExportSize];
        await client.ReadAsync(0, buffer);
        Assert.True(buffer.AsSpan().SequenceEqual(chain.Expected["vda"]));
    }
}
