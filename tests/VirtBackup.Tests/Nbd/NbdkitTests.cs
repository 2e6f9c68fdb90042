using System.Diagnostics;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

public sealed class NbdkitTests
{
    private const int Ki = 1024;
    private const int Mi = 1024 * Ki;
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    [Fact(Timeout = 60000)]
    public async Task The_data_plugin_layout_reads_back_exactly_with_sparse_extents()
    {
        await using var server = await NbdkitServer.StartUnixAsync("data", "data=1 2 3 @0x100000 4", "size=2M");
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);
        var buffer = new byte[2 * Mi];
        buffer.AsSpan().Fill(0xFF);

        await client.ReadAsync(0, buffer);
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        var expected = new byte[2 * Mi];
        expected[0] = 1;
        expected[1] = 2;
        expected[2] = 3;
        expected[0x100000] = 4;
        Assert.True(buffer.AsSpan().SequenceEqual(expected));
        // The data plugin's sparse array allocates 32 KiB pages.
        Assert.Equal(
        [
            new NbdExtent(0, 32 * Ki, 0),
            new NbdExtent(32 * Ki, Mi - 32 * Ki, 3),
            new NbdExtent(Mi, 32 * Ki, 0),
            new NbdExtent(Mi + 32 * Ki, Mi - 32 * Ki, 3),
        ], extents);
    }

    [Fact(Timeout = 60000)]
    public async Task Nbdkit_without_block_size_information_gets_the_protocol_defaults()
    {
        await using var server = await NbdkitServer.StartUnixAsync("memory", "size=1M");
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        Assert.Equal(1u, client.MinimumBlockSize);
        Assert.Equal(4096u, client.PreferredBlockSize);
        Assert.Equal(32u * Mi, client.MaximumBlockSize);
    }

    [Fact(Timeout = 60000)]
    public async Task The_memory_plugin_over_tcp_round_trips_write_zero_trim_and_flush()
    {
        await using var server = await NbdkitServer.StartTcpAsync("memory", "size=4M");
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);
        var data = new byte[3 * Mi];
        new Random(7).NextBytes(data);

        await client.WriteAsync(512 * Ki, data);
        await client.WriteZeroesAsync(Mi, 512 * Ki);
        await client.TrimAsync(3 * Mi, 512 * Ki);
        await client.FlushAsync();
        var back = new byte[4 * Mi];
        await client.ReadAsync(0, back);
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        var expected = new byte[4 * Mi];
        data.CopyTo(expected, 512 * Ki);
        expected.AsSpan(Mi, 512 * Ki).Clear();
        expected.AsSpan(3 * Mi, 512 * Ki).Clear(); // the memory plugin trims to zeroes
        Assert.Equal(NbdTransportKind.Tcp, client.Uri.Transport);
        Assert.True(client.CanTrim && client.CanWriteZeroes && client.CanFlush && client.CanMultiConn);
        Assert.True(back.AsSpan().SequenceEqual(expected));
        Assert.Equal(
        [
            new NbdExtent(0, 512 * Ki, 3),
            new NbdExtent(512 * Ki, 512 * Ki, 0),
            new NbdExtent(Mi, 512 * Ki, 3),
            new NbdExtent(Mi + 512 * Ki, 1536 * Ki, 0),
            new NbdExtent(3 * Mi, Mi, 3),
        ], extents);
    }

    [Fact(Timeout = 60000)]
    public async Task A_plugin_read_error_becomes_an_NbdException_naming_READ_and_the_offset()
    {
        await using var server = await NbdkitServer.StartUnixAsync("eval",
            "get_size=echo 1048576",
            "pread=if [ $4 -ge 524288 ]; then echo 'EIO bad sector' >&2; exit 1; fi; head -c $3 /dev/zero");
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(512 * Ki, new byte[64 * Ki]));
        var good = new byte[4 * Ki];
        good.AsSpan().Fill(0xFF);
        await client.ReadAsync(0, good);

        Assert.Equal("READ", error.Command);
        Assert.Equal(512 * Ki, error.Offset);
        Assert.Equal(64 * Ki, error.Length);
        Assert.Equal(5u, error.ServerErrno);
        Assert.False(error.IsServerError);
        Assert.StartsWith("NBD READ at offset 524288 (length 65536): the server failed the request with EIO", error.Message);
        Assert.Equal(new byte[4 * Ki], good); // the connection survives a reported error
    }

    [Fact(Timeout = 60000)]
    public async Task A_plugin_short_read_becomes_an_NbdException_naming_READ()
    {
        await using var server = await NbdkitServer.StartUnixAsync("eval", "get_size=echo 1048576", "pread=head -c 10 /dev/zero");
        await using var client = await NbdClient.ConnectAsync(server.Uri);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(4096, new byte[4096]));

        Assert.Equal("READ", error.Command);
        Assert.Equal(4096, error.Offset);
        Assert.Equal(5u, error.ServerErrno);
        Assert.Contains("NBD READ at offset 4096 (length 4096)", error.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Requests_are_split_to_the_advertised_maximum_and_must_respect_the_minimum()
    {
        await using var server = await NbdkitServer.StartUnixAsync("--filter=blocksize-policy", "pattern", "size=4M",
            "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=65536", "blocksize-error-policy=error");
        await using var client = await NbdClient.ConnectAsync(server.Uri);
        var buffer = new byte[Mi];

        await client.ReadAsync(Mi, buffer); // 16 requests of 64 KiB; larger ones would fail with EINVAL
        var unaligned = await Assert.ThrowsAsync<ArgumentException>(() => client.ReadAsync(100, new byte[512]));

        Assert.Equal((512u, 4096u, 65536u), (client.MinimumBlockSize, client.PreferredBlockSize, client.MaximumBlockSize));
        // The pattern plugin writes each 8-byte offset as a big-endian number.
        for (var i = 0; i < buffer.Length; i += 8)
        {
            Assert.Equal((ulong)(Mi + i), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(buffer.AsSpan(i)));
        }

        Assert.Contains("minimum block size of 512", unaligned.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Cancelling_a_slow_read_returns_promptly_and_the_connection_stays_usable()
    {
        await using var server = await NbdkitServer.StartUnixAsync("--filter=delay", "memory", "size=1M", "rdelay=1");
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadAsync(0, new byte[4096], cancel.Token));
        var cancelledAfter = clock.Elapsed;
        var extents = await client.BlockStatusAsync("base:allocation", 0, Mi);
        await client.WriteAsync(0, new byte[] { 1, 2, 3 });

        Assert.True(cancelledAfter < TimeSpan.FromMilliseconds(800), $"cancellation took {cancelledAfter}");
        Assert.Equal([new NbdExtent(0, Mi, 3)], extents);
    }
}
