using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// The fake in-process server during the handshake and around the session: option replies that do not
/// match, silence, implausible block sizes, servers without structured replies, ESHUTDOWN, NBD_CMD_DISC.
/// </summary>
public sealed class HandshakeAndSessionTests
{
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    [Fact(Timeout = 30000)]
    public async Task An_option_reply_for_another_option_fails_the_handshake_as_a_server_error()
    {
        await using var server = new FakeNbdServer(_ => Task.CompletedTask)
        {
            OptionHook = async (c, option, _) =>
            {
                if (option != 8)
                {
                    return FakeOptionOutcome.NotHandled;
                }

                await c.SendOptionReplyAsync(10, 1, []);
                return FakeOptionOutcome.Handled;
            },
        }.Start();

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri));

        Assert.Equal("NBD_OPT_STRUCTURED_REPLY", error.Command);
        Assert.True(error.IsServerError);
        Assert.Contains("server error: the reply is for NBD_OPT_SET_META_CONTEXT, not for the option sent", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_server_that_never_answers_the_handshake_times_out_clearly()
    {
        await using var server = new FakeNbdServer(_ => Task.CompletedTask) { SendGreeting = false }.Start();
        var options = new NbdConnectOptions { ConnectTimeout = TimeSpan.FromMilliseconds(300) };

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri, options));

        Assert.True(error.IsServerError);
        Assert.Equal("handshake", error.Command);
        Assert.Equal($"NBD handshake with {server.Uri}: server error: no complete answer within 0.3 s.", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task Implausible_block_sizes_are_rejected_during_the_handshake()
    {
        await using var server = new FakeNbdServer(_ => Task.CompletedTask) { BlockSize = (3, 4096, 65536) }.Start();

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri));

        Assert.Contains("NBD_OPT_GO: server error: minimum block size 3 is not a power of two between 1 and 64 KiB", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task A_server_without_structured_replies_is_read_with_simple_replies_but_cannot_give_block_status()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendSimpleReplyAsync(request.Handle, 0, [1, 2, 3]);
            await c.ReadExactAsync(28); // NBD_CMD_DISC
        })
        { StructuredReplies = false }.Start();

        var refused = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri, WithAllocation));
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        var buffer = new byte[3];
        await client.ReadAsync(10, buffer);

        Assert.Contains("does not support structured replies", refused.Message);
        Assert.False(client.StructuredReplies);
        Assert.Equal(new byte[] { 1, 2, 3 }, buffer);
    }

    [Fact(Timeout = 30000)]
    public async Task A_structured_chunk_without_negotiation_is_rejected()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendDataAsync(request.Handle, request.Offset, new byte[512], done: true);
            await c.ReadExactAsync(1);
        })
        { StructuredReplies = false }.Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(0, new byte[512]));

        Assert.Contains("server error: the connection was dropped after an invalid reply: a structured reply chunk arrived although structured replies were not negotiated", error.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task ESHUTDOWN_from_the_server_stops_further_requests()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            await c.SendSimpleReplyAsync(request.Handle, 108);
            await c.ReadExactAsync(1);
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var first = await Assert.ThrowsAsync<NbdException>(() => client.FlushAsync());
        var second = await Assert.ThrowsAsync<NbdException>(() => client.FlushAsync());

        Assert.Equal("NBD FLUSH: the server failed the request with ESHUTDOWN (server is shutting down)", first.Message);
        Assert.Contains("the server is shutting down", second.Message);
    }

    [Fact(Timeout = 30000)]
    public async Task Disposing_the_client_sends_NBD_CMD_DISC()
    {
        var disconnect = new TaskCompletionSource<FakeRequest>();
        await using var server = new FakeNbdServer(async c => disconnect.SetResult(await c.ReadRequestAsync())).Start();
        var client = await NbdClient.ConnectAsync(server.Uri);

        await client.DisposeAsync();
        var request = await disconnect.Task;

        Assert.Equal((ushort)2, request.Type);
        Assert.Equal((0L, 0u), (request.Offset, request.Length));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ReadAsync(0, new byte[1]));
    }
}
