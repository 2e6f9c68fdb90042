using System.Diagnostics;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// A fake in-process server that breaks the protocol in one specific way per test. Each must end in an
/// NbdException that blames the server ("server error"), promptly: the test timeout proves there is no hang.
/// </summary>
public sealed class HostileServerTests
{
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    private static async Task<NbdException> ReadFailsAsync(Func<FakeConnection, Task> scenario, long offset = 65536, int length = 4096)
    {
        await using var server = new FakeNbdServer(scenario).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(offset, new byte[length]));
        Assert.Empty(server.Failures);
        return error;
    }

    /// <summary>
    /// Asks for the base:allocation status of [0, 64 KiB) from a server that answers with one block-status chunk of
    /// <paramref name="descriptors"/> for <paramref name="contextId"/>; returns the client's error.
    /// </summary>
    private static async Task<NbdException> BlockStatusFailsAsync(uint contextId, bool requestOne, params (uint Length, uint Flags)[] descriptors)
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendBlockStatusAsync(request.Handle, contextId, true, descriptors);
            await c.ReadExactAsync(1);
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);
        return await Assert.ThrowsAsync<NbdException>(() => client.BlockStatusAsync("base:allocation", 0, 65536, requestOne: requestOne));
    }

    [Fact(Timeout = 30000)]
    public async Task A_reply_with_an_unknown_handle_fails_the_pending_read_with_a_server_error()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendNoneAsync(request.Handle + 1000);
            await c.ReadExactAsync(1); // wait for the client to hang up
        });

        Assert.True(error.IsServerError);
        Assert.Equal("READ", error.Command);
        Assert.Equal(65536, error.Offset);
        Assert.StartsWith("NBD READ at offset 65536 (length 4096): server error: the connection was dropped after an invalid reply: NBD_REPLY_TYPE_NONE chunk with handle", error.Message);
        Assert.Contains("which matches no request in flight", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_data_chunk_outside_the_requested_range_fails_with_a_server_error_naming_READ_and_the_offset()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendDataAsync(request.Handle, 131072, new byte[4096], done: true);
            await c.ReadExactAsync(1);
        });

        Assert.Equal(
            "NBD READ at offset 65536 (length 4096): server error: chunk offset 131072 (length 4096) outside the request. This is likely a bug in the NBD server.",
            error.Message);
        Assert.True(error.IsServerError);
    }

    [Fact(Timeout = 30000)]
    public async Task A_data_chunk_overlapping_earlier_data_is_rejected()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendDataAsync(request.Handle, request.Offset, new byte[2048], done: false);
            await c.SendDataAsync(request.Handle, request.Offset + 1024, new byte[3072], done: true);
            await c.ReadExactAsync(1);
        });

        Assert.Contains("server error: NBD_REPLY_TYPE_OFFSET_DATA chunk at offset 66560 (length 3072) overlaps data already received", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_reply_that_ends_before_covering_the_whole_read_is_rejected()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendDataAsync(request.Handle, request.Offset, new byte[2048], done: false);
            await c.SendNoneAsync(request.Handle);
            await c.ReadExactAsync(1);
        });

        Assert.Contains("server error: the reply ended after delivering only 2048 of 4096 bytes", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_truncated_reply_followed_by_close_fails_promptly_with_a_server_error()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            var partial = new byte[8 + 100];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(partial, (ulong)request.Offset);
            await c.SendChunkAsync(request.Handle, FakeConnection.TypeOffsetData, FakeConnection.Done, partial, length: 8 + 4096);
            c.Close();
        });

        Assert.Equal(
            "NBD READ at offset 65536 (length 4096): server error: the server closed the connection in the middle of a reply. This is likely a bug in the NBD server.",
            error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_server_closing_the_connection_fails_every_pending_request_and_later_ones()
    {
        var received = new TaskCompletionSource();
        await using var server = new FakeNbdServer(async c =>
        {
            for (var i = 0; i < 3; i++)
            {
                await c.ReadRequestAsync();
            }

            received.SetResult();
            c.Close();
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var reads = new[] { 0L, 4096, 8192 }.Select(offset => client.ReadAsync(offset, new byte[512])).ToList();
        var errors = new List<NbdException>();
        foreach (var read in reads)
        {
            errors.Add(await Assert.ThrowsAsync<NbdException>(() => read));
        }

        var later = await Assert.ThrowsAsync<NbdException>(() => client.FlushAsync());

        Assert.Equal(
            ["NBD READ at offset 0 (length 512)", "NBD READ at offset 4096 (length 512)", "NBD READ at offset 8192 (length 512)"],
            errors.Select(e => e.Message.Split(':')[0]));
        Assert.All(errors, e => Assert.Contains("server error: the server closed the connection without answering this request", e.Message));
        Assert.StartsWith("NBD FLUSH: server error:", later.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_block_status_reply_with_a_wrong_context_id_fails_with_a_server_error()
    {
        var error = await BlockStatusFailsAsync(contextId: 8, requestOne: false, (4096, 0));

        Assert.Equal(
            "NBD BLOCK_STATUS at offset 0 (length 65536): server error: block-status chunk for context id 8, which was never negotiated (negotiated: 7 = base:allocation). This is likely a bug in the NBD server.",
            error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task Block_status_extents_longer_than_the_request_are_rejected()
    {
        var error = await BlockStatusFailsAsync(contextId: 7, requestOne: false, (32768, 0), (65536, 3));

        Assert.Contains("server error: block-status descriptors for context 'base:allocation' extend to offset 98304, beyond the end of the request", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task An_error_chunk_carries_the_server_errno_and_message_and_the_connection_survives()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var bad = await c.ReadRequestAsync();
            await c.SendErrorAsync(bad.Handle, 5, "bad sector", bad.Offset + 512, done: true);
            var good = await c.ReadRequestAsync();
            await c.SendDataAsync(good.Handle, good.Offset, [9, 8, 7, 6], done: true);
            await c.ReadExactAsync(1);
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(65536, new byte[4096]));
        var buffer = new byte[4];
        await client.ReadAsync(0, buffer);

        Assert.Equal("NBD READ at offset 65536 (length 4096): the server failed the request at offset 66048 with EIO (input/output error): bad sector", error.Message);
        Assert.Equal(5u, error.ServerErrno);
        Assert.False(error.IsServerError);
        Assert.Equal(new byte[] { 9, 8, 7, 6 }, buffer);
    }

    [Fact(Timeout = 30000)]
    public async Task A_simple_reply_to_READ_after_structured_replies_were_negotiated_is_rejected()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendSimpleReplyAsync(request.Handle, 0, new byte[4096]);
            await c.ReadExactAsync(1);
        });

        Assert.Contains("server error: a simple reply to READ although structured replies were negotiated", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_garbled_reply_magic_is_rejected()
    {
        var error = await ReadFailsAsync(async c =>
        {
            await c.ReadRequestAsync();
            await c.SendRawAsync([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            await c.ReadExactAsync(1);
        });

        Assert.Contains("server error: the connection was dropped after an invalid reply: reply magic 0xdeadbeef is neither a simple nor a structured reply", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task After_a_protocol_violation_new_requests_fail_immediately()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendHoleAsync(request.Handle, request.Offset, 0, done: true);
            await c.ReadExactAsync(1);
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(0, new byte[512]));
        var clock = Stopwatch.StartNew();

        var later = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(4096, new byte[512]));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}"); // a hang would last until the test times out
        Assert.True(later.IsServerError);
        Assert.Equal(4096, later.Offset);
    }

    [Fact(Timeout = 30000)]
    public async Task Out_of_order_replies_and_scattered_chunks_are_reassembled_exactly()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var first = await c.ReadRequestAsync();
            var second = await c.ReadRequestAsync(); // both in flight at once
            await c.SendDataAsync(second.Handle, second.Offset, [5, 5, 5, 5], done: true);
            await c.SendHoleAsync(first.Handle, first.Offset + 4, 4, done: false);
            await c.SendDataAsync(first.Handle, first.Offset, [1, 2, 3, 4], done: false);
            await c.SendNoneAsync(first.Handle);
            await c.ReadExactAsync(1);
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        var a = new byte[8];
        var b = new byte[4];
        a.AsSpan().Fill(0xFF);

        await Task.WhenAll(client.ReadAsync(0, a), client.ReadAsync(100, b));

        Assert.Equal(new byte[] { 1, 2, 3, 4, 0, 0, 0, 0 }, a);
        Assert.Equal(new byte[] { 5, 5, 5, 5 }, b);
    }

    [Fact(Timeout = 30000)]
    public async Task A_block_status_reply_that_leaves_out_a_negotiated_context_is_rejected()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendBlockStatusAsync(request.Handle, 7, true, (4096, 0));
            await c.ReadExactAsync(1);
        })
        {
            Contexts = new() { ["base:allocation"] = 7, ["qemu:dirty-bitmap:b0"] = 9 },
        }.Start();
        var options = new NbdConnectOptions { MetaContexts = ["base:allocation", "qemu:dirty-bitmap:b0"] };
        await using var client = await NbdClient.ConnectAsync(server.Uri, options);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.BlockStatusAsync("base:allocation", 0, 4096));

        Assert.Contains("server error: the reply ended without block status for context 'qemu:dirty-bitmap:b0' (id 9)", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task Several_descriptors_in_answer_to_request_one_are_rejected()
    {
        var error = await BlockStatusFailsAsync(contextId: 7, requestOne: true, (4096, 0), (4096, 3));

        Assert.Contains("server error: block-status chunk with 2 descriptors although NBD_CMD_FLAG_REQ_ONE asked for one", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task An_error_chunk_whose_message_does_not_fit_is_rejected()
    {
        var error = await ReadFailsAsync(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendChunkAsync(request.Handle, FakeConnection.TypeError, FakeConnection.Done, [0, 0, 0, 5, 0, 50, 65, 66]);
            await c.ReadExactAsync(1);
        });

        Assert.Contains("server error: malformed NBD_REPLY_TYPE_ERROR: error message length 50 does not fit in the 8-byte chunk", error.Message);
    }
}
