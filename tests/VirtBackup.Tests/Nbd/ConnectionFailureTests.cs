using System.Diagnostics;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

public sealed class ConnectionFailureTests
{
    [Fact(Timeout = 30000)]
    public async Task Connecting_to_a_socket_nobody_listens_on_fails_clearly()
    {
        var uri = NbdUri.Unix("/tmp/vbnbd-does-not-exist/nbd.sock");

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(uri));

        Assert.Equal("connect", error.Command);
        Assert.StartsWith("NBD connect: cannot connect to nbd+unix:///?socket=/tmp/vbnbd-does-not-exist/nbd.sock: ", error.Message);
        Assert.False(error.IsServerError);
    }

    [Fact(Timeout = 30000)]
    public async Task Cancelling_a_read_while_its_data_is_arriving_ends_promptly_and_closes_the_connection()
    {
        await using var server = new FakeNbdServer(async c =>
        {
            var request = await c.ReadRequestAsync();
            var partial = new byte[8 + 100];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(partial, (ulong)request.Offset);
            await c.SendChunkAsync(request.Handle, FakeConnection.TypeOffsetData, FakeConnection.Done, partial, length: 8 + 4096);
            await c.ReadExactAsync(1 << 20); // stall until the client hangs up
        }).Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadAsync(0, new byte[4096], cancel.Token));
        var elapsed = clock.Elapsed;
        var later = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(0, new byte[1]));

        Assert.True(elapsed < TimeSpan.FromSeconds(2), $"cancellation took {elapsed}");
        Assert.Equal("NBD READ at offset 0 (length 1): a request was cancelled while its data was arriving, so the connection was closed.", later.Message);
        Assert.False(later.IsServerError);
    }
}
