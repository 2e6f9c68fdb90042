namespace VirtBackup.Tests.Nbd;

public sealed class QemuNbdReadTests(QemuNbdLayoutFixture fixture) : IClassFixture<QemuNbdLayoutFixture>
{
    private const int Mi = 1024 * 1024;
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    private NbdUri Uri => fixture.Server.Uri;

    [Fact(Timeout = 60000)]
    public async Task Connecting_to_qemu_nbd_reports_the_export_size_flags_and_block_sizes()
    {
        await using var client = await NbdClient.ConnectAsync(Uri, WithAllocation);

        Assert.Equal(QemuNbdLayoutFixture.Size, client.ExportSize);
        Assert.True(client.ReadOnly);
        Assert.True(client.CanFlush);
        Assert.False(client.CanTrim);
        Assert.False(client.CanWriteZeroes);
        Assert.True(client.StructuredReplies);
        Assert.Equal(1u, client.MinimumBlockSize);
        Assert.Equal(4096u, client.PreferredBlockSize);
        Assert.Equal(32u * Mi, client.MaximumBlockSize);
        Assert.Equal(["base:allocation"], client.MetaContexts.Keys);
    }

    [Fact(Timeout = 60000)]
    public async Task Base_allocation_extents_from_qemu_nbd_match_the_qcow2_layout_exactly()
    {
        await using var client = await NbdClient.ConnectAsync(Uri, WithAllocation);

        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal(QemuNbdLayoutFixture.ExpectedAllocation, extents.Select(e => (e.Offset, e.Length, e.Flags)));
    }

    [Fact(Timeout = 60000)]
    public async Task One_block_status_request_in_the_middle_of_a_hole_starts_at_the_requested_offset()
    {
        await using var client = await NbdClient.ConnectAsync(Uri, WithAllocation);

        var extents = await client.BlockStatusAsync("base:allocation", 2 * Mi, 5 * Mi);

        Assert.Equal(
            [new NbdExtent(2 * Mi, 4 * Mi, 3), new NbdExtent(6 * Mi, Mi / 2, 0), new NbdExtent(6 * Mi + Mi / 2, Mi / 2, 3)],
            extents);
        Assert.True(extents[0].IsHole && extents[0].IsZero);
        Assert.False(extents[1].IsHole || extents[1].IsZero);
    }

    [Fact(Timeout = 60000)]
    public async Task Block_status_with_request_one_returns_a_single_extent()
    {
        await using var client = await NbdClient.ConnectAsync(Uri, WithAllocation);

        var extents = await client.BlockStatusAsync("base:allocation", 512 * 1024, 8 * Mi, requestOne: true);

        Assert.Equal([new NbdExtent(512 * 1024, 512 * 1024, 0)], extents);
    }

    [Fact(Timeout = 60000)]
    public async Task Reading_the_whole_qcow2_returns_exactly_the_written_bytes_with_holes_as_zeros()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        var buffer = new byte[client.ExportSize];
        buffer.AsSpan().Fill(0xFF);

        await client.ReadAsync(0, buffer); // 64 MiB: split into two 32 MiB requests

        Assert.True(buffer.AsSpan().SequenceEqual(fixture.Expected));
    }

    [Fact(Timeout = 60000)]
    public async Task Reading_a_hole_from_qemu_nbd_returns_zeros()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        var buffer = new byte[64 * 1024];
        buffer.AsSpan().Fill(0xFF);

        await client.ReadAsync(2 * Mi, buffer);

        Assert.Equal(new byte[64 * 1024], buffer);
    }

    [Fact(Timeout = 60000)]
    public async Task Reading_an_unaligned_range_across_a_data_hole_boundary_returns_exact_bytes()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        var buffer = new byte[300];

        await client.ReadAsync(Mi - 100, buffer);

        Assert.Equal(fixture.Expected.AsSpan(Mi - 100, 300).ToArray(), buffer);
        Assert.Equal(0x11, buffer[99]);
        Assert.Equal(0x00, buffer[100]);
    }

    [Fact(Timeout = 60000)]
    public async Task Thirty_two_concurrent_reads_on_one_connection_return_the_right_bytes()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        var offsets = Enumerable.Range(0, 32).Select(i => (long)i * 2 * Mi + Mi - 4096 * i).ToArray();
        var buffers = offsets.Select(_ => new byte[256 * 1024]).ToArray();

        await Task.WhenAll(offsets.Select((offset, i) => client.ReadAsync(offset, buffers[i])));

        for (var i = 0; i < offsets.Length; i++)
        {
            Assert.True(buffers[i].AsSpan().SequenceEqual(fixture.Expected.AsSpan((int)offsets[i], buffers[i].Length)), $"read {i} at {offsets[i]}");
        }
    }

    [Fact(Timeout = 60000)]
    public async Task ReadRangeAsync_hands_over_chunks_in_offset_order_with_exact_bytes()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        const long start = 512 * 1024;
        const long length = 8 * Mi + 12345;
        var received = new List<long>();
        var copy = new byte[length];

        await client.ReadRangeAsync(start, length, (offset, data) =>
        {
            received.Add(offset);
            data.Span.CopyTo(copy.AsSpan((int)(offset - start)));
            return ValueTask.CompletedTask;
        }, chunkSize: Mi, inFlight: 4);

        Assert.Equal(Enumerable.Range(0, 9).Select(i => start + (long)i * Mi), received);
        Assert.True(copy.AsSpan().SequenceEqual(fixture.Expected.AsSpan((int)start, (int)length)));
    }

    [Fact(Timeout = 60000)]
    public async Task ReadRangesAsync_runs_one_window_across_ranges_and_hands_over_chunks_range_by_range()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);
        NbdRange[] ranges = [new(Mi + 4096, 3 * Mi), new(6 * Mi, 0), new(6 * Mi, 512 * 1024), new(8 * Mi, 2 * Mi + 100)];
        var received = new List<(long Offset, int Length)>();

        await client.ReadRangesAsync(ranges, (offset, data) =>
        {
            received.Add((offset, data.Length));
            Assert.True(data.Span.SequenceEqual(fixture.Expected.AsSpan((int)offset, data.Length)));
            return ValueTask.CompletedTask;
        }, chunkSize: Mi, inFlight: 3);

        (long, int)[] expected =
        [
            (Mi + 4096, Mi), (2 * Mi + 4096, Mi), (3 * Mi + 4096, Mi),
            (6 * Mi, 512 * 1024),
            (8 * Mi, Mi), (9 * Mi, Mi), (10 * Mi, 100),
        ];
        Assert.Equal(expected, received);
    }

    [Fact(Timeout = 60000)]
    public async Task Reads_without_structured_replies_use_simple_replies_and_return_exact_bytes()
    {
        await using var client = await NbdClient.ConnectAsync(Uri, new NbdConnectOptions { StructuredReplies = false });
        var buffer = new byte[7 * Mi];

        await client.ReadAsync(0, buffer);

        Assert.False(client.StructuredReplies);
        Assert.True(buffer.AsSpan().SequenceEqual(fixture.Expected.AsSpan(0, buffer.Length)));
    }

    [Fact(Timeout = 60000)]
    public async Task Requesting_a_dirty_bitmap_the_server_does_not_export_fails_naming_the_context()
    {
        var options = new NbdConnectOptions { MetaContexts = ["base:allocation", "qemu:dirty-bitmap:nope"] };

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(Uri, options));

        Assert.Equal("NBD_OPT_SET_META_CONTEXT", error.Command);
        Assert.Contains("'qemu:dirty-bitmap:nope'", error.Message);
        Assert.Contains("it accepted: base:allocation", error.Message);
        Assert.False(error.IsServerError);
    }

    [Fact(Timeout = 60000)]
    public async Task Connecting_to_an_unknown_export_name_fails_clearly()
    {
        var wrong = NbdUri.Unix(Uri.SocketPath!, "no-such-disk");

        var error = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(wrong));

        Assert.Equal("NBD_OPT_GO", error.Command);
        Assert.StartsWith("NBD_OPT_GO: the server has no export named 'no-such-disk'", error.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Listing_exports_of_qemu_nbd_returns_the_named_export_and_its_description()
    {
        var exports = await NbdClient.ListExportsAsync(Uri);

        Assert.Equal([new NbdExportInfo(QemuNbdLayoutFixture.ExportName, QemuNbdLayoutFixture.Description)], exports);
    }

    [Fact(Timeout = 60000)]
    public async Task Block_status_for_a_context_that_was_not_negotiated_is_rejected_before_sending()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.BlockStatusAsync("base:allocation", 0, Mi));

        Assert.Contains("'base:allocation' was not negotiated", error.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Writing_to_a_read_only_export_is_refused_before_sending()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);

        var error = await Assert.ThrowsAsync<NbdException>(() => client.WriteAsync(0, new byte[512]));

        Assert.Equal("WRITE", error.Command);
        Assert.Contains("read-only", error.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Reading_beyond_the_end_of_the_export_is_rejected_and_the_connection_stays_usable()
    {
        await using var client = await NbdClient.ConnectAsync(Uri);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync(client.ExportSize - 10, new byte[11]));
        var tail = new byte[10];
        await client.ReadAsync(client.ExportSize - 10, tail);

        Assert.Equal(new byte[10], tail);
    }
}
