using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

public sealed class NbdReaderPoolTests(QemuNbdMultiConnFixture fixture) : IClassFixture<QemuNbdMultiConnFixture>
{
    private const int Mi = 1024 * 1024;
    private const long Ki = 1024;

    private NbdUri Uri => fixture.Server.Uri;

    [Fact(Timeout = 60000)]
    public async Task Four_connections_hand_over_exact_bytes_strictly_in_offset_order()
    {
        await using var pool = await NbdReaderPool.ConnectAsync(Uri, connections: 4);
        NbdRange[] ranges = [new(4096, 17 * Mi + 123), new(20 * Mi, 0), new(20 * Mi + 7, Mi), new(24 * Mi, 15 * Mi + 512 * 1024)];
        var received = new List<(long Offset, int Length)>();

        await pool.ReadRangesAsync(ranges, (offset, data) =>
        {
            received.Add((offset, data.Length));
            Assert.True(data.Span.SequenceEqual(fixture.Expected.AsSpan((int)offset, data.Length)), $"bytes at {offset}");
            return ValueTask.CompletedTask;
        }, chunkSize: Mi, windowBytes: 6 * Mi);

        Assert.True(pool.Primary.CanMultiConn);
        Assert.Equal(4, pool.Clients.Count);
        var expected = ranges.SelectMany(r => Enumerable.Range(0, (int)((r.Length + Mi - 1) / Mi))
            .Select(k => (r.Offset + (long)k * Mi, (int)Math.Min(Mi, r.Length - (long)k * Mi)))).ToList();
        Assert.Equal(expected, received);
    }

    [Fact(Timeout = 60000)]
    public async Task A_server_error_on_one_connection_fails_the_read_naming_the_offset_and_closes_every_connection()
    {
        // The same bytes from nbdkit (multi-conn), whose READs touching 40.5 MiB fail with EIO. qemu-nbd offers no
        // per-offset error injection that works over NBD (blkdebug's rules do not fire under qemu-nbd 7.2).
        const long failing = 40L * Mi + 512 * 1024;
        await using var server = await NbdkitServer.StartUnixAsync(
            "eval",
            $"get_size=echo {QemuNbdMultiConnFixture.Size}",
            "can_multi_conn=exit 0",
            "thread_model=echo parallel",
            $"pread=if [ $4 -le {failing} ] && [ $(($4 + $3)) -gt {failing} ]; then echo 'EIO injected' >&2; exit 1; fi; "
            + $"exec dd if={fixture.Image} iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none");
        var pool = await NbdReaderPool.ConnectAsync(server.Uri, connections: 4);
        var received = new List<long>();

        // 30 MiB..50 MiB in 1 MiB chunks: the chunk at 40 MiB (the 11th, on the third connection) fails with EIO.
        var error = await Assert.ThrowsAsync<NbdException>(() => pool.ReadRangesAsync([new(30 * Mi, 20 * Mi)], (offset, data) =>
        {
            received.Add(offset);
            Assert.True(data.Span.SequenceEqual(fixture.Expected.AsSpan((int)offset, data.Length)), $"bytes at {offset}");
            return ValueTask.CompletedTask;
        }, chunkSize: Mi));

        Assert.Equal(4, pool.Clients.Count);
        Assert.True(error.Offset == 40L * Mi, error.ToString());
        Assert.Equal("READ", error.Command);
        Assert.Equal(5u, error.ServerErrno);
        Assert.Contains("offset 41943040", error.Message);
        // In order and nothing from 40 MiB on; fewer when the failure cancelled chunks before it still in flight.
        Assert.Equal(Enumerable.Range(30, received.Count).Select(i => (long)i * Mi), received);
        Assert.True(received.Count <= 10);
        await AssertClosedAsync(pool);
        await pool.DisposeAsync();
    }

    [Fact(Timeout = 60000)]
    public async Task Cancelling_the_read_closes_every_connection()
    {
        // qemu-nbd serves at most 8 connections at once: three rounds of 4 only connect if each round closed its own.
        for (var round = 0; round < 3; round++)
        {
            var pool = await NbdReaderPool.ConnectAsync(Uri, connections: 4, new NbdConnectOptions { ConnectTimeout = TimeSpan.FromSeconds(10) });
            using var cts = new CancellationTokenSource();
            var chunks = 0;

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pool.ReadRangesAsync([new(0, 32 * Mi)], (_, _) =>
            {
                if (++chunks == 3)
                {
                    cts.Cancel();
                }

                return ValueTask.CompletedTask;
            }, chunkSize: Mi, cancellationToken: cts.Token));

            Assert.Equal(4, pool.Clients.Count);
            await AssertClosedAsync(pool);
            await pool.DisposeAsync();
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Disposing_after_a_successful_read_closes_every_connection()
    {
        var pool = await NbdReaderPool.ConnectAsync(Uri, connections: 3);
        await pool.ReadRangesAsync([new(0, 8 * Mi)], (_, _) => ValueTask.CompletedTask);

        await pool.DisposeAsync();

        await AssertClosedAsync(pool);
    }

    [Fact(Timeout = 60000)]
    public async Task Connections_scale_with_the_data_to_read_up_to_four()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);

        Assert.Equal(1, NbdReaderPool.ConnectionsFor(client, 16 * Mi, dataExtents: 1));
        Assert.Equal(2, NbdReaderPool.ConnectionsFor(client, 100 * Mi, dataExtents: 1));
        Assert.Equal(4, NbdReaderPool.ConnectionsFor(client, 768 * Mi, dataExtents: 3));
        Assert.Equal(1, NbdReaderPool.ConnectionsFor(client, 768 * Mi, dataExtents: 3, maxConnections: 1));
    }

    [Fact(Timeout = 60000)]
    public async Task Extents_of_less_than_256_KiB_on_average_are_read_on_one_connection()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);

        Assert.Equal(1, NbdReaderPool.ConnectionsFor(client, 3750L * Mi, dataExtents: 60_000));
        Assert.Equal(1, NbdReaderPool.ConnectionsFor(client, (256 * Ki * 1000) - 1, dataExtents: 1000));
        Assert.Equal(4, NbdReaderPool.ConnectionsFor(client, 256 * Ki * 1000, dataExtents: 1000));
        Assert.Equal(4, NbdReaderPool.ConnectionsFor(client, 768 * Mi, dataExtents: 0));
    }

    private static async Task AssertClosedAsync(NbdReaderPool pool)
    {
        foreach (var client in pool.Clients)
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ReadAsync(0, new byte[512]));
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.ReadRangesAsync([new(0, 512)], (_, _) => ValueTask.CompletedTask));
    }
}
