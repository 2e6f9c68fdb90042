using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// GetExtentsAsync maps a range in pieces of 1 GiB with several BLOCK_STATUS requests in flight, against a fake server
/// that answers nothing until the pieces it expects were asked for (a client that waits for each reply would hang here),
/// and keeps fewer in flight when the replies hold many extents.
/// </summary>
public sealed class BlockStatusPipelineTests
{
    private const long Gi = 1L << 30;
    private const uint HalfGi = 1u << 29;
    private const uint Data = 0;
    private const uint Zero = 3; // NBD_STATE_HOLE | NBD_STATE_ZERO
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    [Fact(Timeout = 30000)]
    public async Task Two_pieces_are_asked_for_before_any_reply_then_eight_once_a_reply_is_sparse_and_the_extents_come_back_in_order_and_merged()
    {
        var requests = new List<FakeRequest>();
        await using var server = new FakeNbdServer(async c =>
        {
            var first = new[] { await c.ReadRequestAsync(), await c.ReadRequestAsync() };
            requests.AddRange(first);
            await c.SendBlockStatusAsync(first[1].Handle, 7, true, ((uint)Gi, Data));
            // The first piece is answered for its first half only: its re-query comes before any third piece.
            await c.SendBlockStatusAsync(first[0].Handle, 7, true, (HalfGi, Zero));
            var again = await c.ReadRequestAsync();
            requests.Add(again);
            await c.SendBlockStatusAsync(again.Handle, 7, true, (HalfGi, Data));

            // Two extents per piece: the client now keeps eight in flight, all asked for before any of them is answered.
            var pieces = new List<FakeRequest>();
            for (var i = 0; i < 8; i++)
            {
                pieces.Add(await c.ReadRequestAsync());
            }

            requests.AddRange(pieces);
            // Replies in reverse order; the piece at 9 GiB is the last 4 KiB, the one at 2 GiB answers for its first half only.
            await c.SendBlockStatusAsync(pieces[7].Handle, 7, true, (4096, Data));
            for (var i = 6; i > 0; i--)
            {
                await c.SendBlockStatusAsync(pieces[i].Handle, 7, true, ((uint)Gi, Zero));
            }

            await c.SendBlockStatusAsync(pieces[0].Handle, 7, true, (HalfGi, Data));
            var rest = await c.ReadRequestAsync();
            requests.Add(rest);
            await c.SendBlockStatusAsync(rest.Handle, 7, true, (HalfGi, Zero));
            await c.ReadExactAsync(1); // until the client hangs up
        })
        { ExportSize = 9 * Gi + 4096 }.Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);

        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal(
        [
            new NbdExtent(0, HalfGi, Zero),
            new NbdExtent(HalfGi, 2 * Gi, Data),
            new NbdExtent(2 * Gi + HalfGi, 6 * Gi + HalfGi, Zero),
            new NbdExtent(9 * Gi, 4096, Data),
        ], extents);
        Assert.Equal(
        [
            (0L, (uint)Gi), (Gi, (uint)Gi), (HalfGi, HalfGi),
            (2 * Gi, (uint)Gi), (3 * Gi, (uint)Gi), (4 * Gi, (uint)Gi), (5 * Gi, (uint)Gi),
            (6 * Gi, (uint)Gi), (7 * Gi, (uint)Gi), (8 * Gi, (uint)Gi), (9 * Gi, 4096u),
            (2 * Gi + HalfGi, HalfGi),
        ], requests.Select(r => (r.Offset, r.Length)));
        Assert.Empty(server.Failures);
    }

    [Fact(Timeout = 30000)]
    public async Task After_pieces_of_40001_extents_the_next_piece_is_32_MiB_and_alone_in_flight_until_a_sparse_reply_widens_both_again()
    {
        const int Dense = 40_000;
        const long DenseBytes = Dense * 4096L;
        var dense = Enumerable.Range(0, Dense).Select(i => (4096u, i % 2 == 0 ? Data : Zero)).ToArray();
        var order = new List<(long Offset, uint Length)>();
        await using var server = new FakeNbdServer(async c =>
        {
            async Task<FakeRequest> ReadAsync()
            {
                var request = await c.ReadRequestAsync();
                order.Add((request.Offset, request.Length));
                return request;
            }

            var p0 = await ReadAsync();
            var p1 = await ReadAsync();
            // Both pieces hold 40,001 extents: from then on one piece is in flight. The piece at 2 GiB is answered for its
            // first half only, so its re-query comes before the next piece; with more in flight, that piece would have been
            // asked for as soon as the dense pieces were mapped.
            var wholePiece = dense.Append(((uint)(Gi - DenseBytes), Zero)).ToArray();
            await c.SendBlockStatusAsync(p1.Handle, 7, true, wholePiece);
            await c.SendBlockStatusAsync(p0.Handle, 7, true, wholePiece);
            // From then on pieces are sized for 2,048 extents at that density: 32 MiB.
            var p2 = await ReadAsync();
            await c.SendBlockStatusAsync(p2.Handle, 7, true, (16u << 20, Zero));
            var rest2 = await ReadAsync();
            await c.SendBlockStatusAsync(rest2.Handle, 7, true, (16u << 20, Zero));
            // Two extents in 32 MiB: pieces of 1 GiB again, eight in flight, so both remaining pieces are asked for at once.
            var p3 = await ReadAsync();
            var p4 = await ReadAsync();
            await c.SendBlockStatusAsync(p4.Handle, 7, true, (p4.Length, Zero));
            await c.SendBlockStatusAsync(p3.Handle, 7, true, (p3.Length, Zero));
            await c.ReadExactAsync(1);
        })
        { ExportSize = 4 * Gi }.Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);

        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        var expected = new List<NbdExtent>();
        foreach (var piece in new[] { 0L, Gi })
        {
            expected.AddRange(dense.Select((e, i) => new NbdExtent(piece + i * 4096L, 4096, e.Item2)));
            expected[^1] = expected[^1] with { Length = Gi - DenseBytes + 4096 }; // the last dense extent is a hole, as is the rest
        }

        expected[^1] = expected[^1] with { Length = 3 * Gi - DenseBytes + 4096 };
        Assert.Equal(expected, extents);
        Assert.Equal(
        [
            (0L, (uint)Gi), (Gi, (uint)Gi), (2 * Gi, 32u << 20), (2 * Gi + (16 << 20), 16u << 20),
            (2 * Gi + (32 << 20), (uint)Gi), (3 * Gi + (32 << 20), (uint)Gi - (32u << 20)),
        ], order);
        Assert.Empty(server.Failures);
    }

    [Theory]
    [InlineData(0, 8)]
    [InlineData(1, 8)]
    [InlineData(8192, 8)]
    [InlineData(8193, 7)]
    [InlineData(32768, 2)]
    [InlineData(32769, 1)]
    [InlineData(62_500, 1)]
    [InlineData(1_000_000, 1)]
    public void The_pieces_in_flight_after_a_piece_keep_the_extents_held_within_the_budget(int extents, int inFlight) =>
        Assert.Equal(inFlight, NbdClient.PiecesInFlightAfter(extents));

    [Theory]
    [InlineData(Gi, 1, Gi)]
    [InlineData(Gi, 0, Gi)]
    [InlineData(Gi, 6_250, 256L << 20)]
    [InlineData(Gi, 40_001, 32L << 20)]
    [InlineData(Gi, 62_500, 32L << 20)]
    [InlineData(32L << 20, 2_048, 32L << 20)]
    [InlineData(32L << 20, 2_049, 16L << 20)]
    [InlineData(2L << 20, 4_096, 1L << 20)]
    [InlineData(1L << 20, 1_000_000, 1L << 20)]
    public void The_next_piece_is_the_power_of_two_that_holds_2048_extents_at_the_last_density_between_1_MiB_and_1_GiB(
        long length, int extents, long next) =>
        Assert.Equal(next, NbdClient.PieceLengthAfter(length, extents));
}
