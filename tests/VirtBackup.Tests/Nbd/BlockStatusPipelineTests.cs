using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// GetExtentsAsync maps a range in pieces of 1 GiB with several BLOCK_STATUS requests in flight, against a fake server
/// that answers nothing until every piece was asked for (a client that waits for each reply would hang here).
/// </summary>
public sealed class BlockStatusPipelineTests
{
    private const long Gi = 1L << 30;
    private const uint HalfGi = 1u << 29;
    private const uint Data = 0;
    private const uint Zero = 3; // NBD_STATE_HOLE | NBD_STATE_ZERO
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    [Fact(Timeout = 30000)]
    public async Task All_pieces_are_asked_for_before_any_reply_and_the_extents_come_back_in_order_and_merged()
    {
        var requests = new List<FakeRequest>();
        await using var server = new FakeNbdServer(async c =>
        {
            var pieces = new List<FakeRequest>();
            for (var i = 0; i < 6; i++)
            {
                pieces.Add(await c.ReadRequestAsync());
            }

            requests.AddRange(pieces);
            // Replies in reverse order; the piece at 1 GiB answers for its first half only.
            await c.SendBlockStatusAsync(pieces[5].Handle, 7, true, (4096, Data));
            await c.SendBlockStatusAsync(pieces[4].Handle, 7, true, (HalfGi, Zero), (HalfGi, Data));
            await c.SendBlockStatusAsync(pieces[3].Handle, 7, true, ((uint)Gi, Zero));
            await c.SendBlockStatusAsync(pieces[2].Handle, 7, true, ((uint)Gi, Zero));
            await c.SendBlockStatusAsync(pieces[1].Handle, 7, true, (HalfGi, Data));
            await c.SendBlockStatusAsync(pieces[0].Handle, 7, true, ((uint)Gi, Data));
            var rest = await c.ReadRequestAsync();
            requests.Add(rest);
            await c.SendBlockStatusAsync(rest.Handle, 7, true, (HalfGi, Zero));
            await c.ReadExactAsync(1); // until the client hangs up
        })
        { ExportSize = 5 * Gi + 4096 }.Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);

        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal(
        [
            new NbdExtent(0, Gi + HalfGi, Data),
            new NbdExtent(Gi + HalfGi, 3 * Gi, Zero),
            new NbdExtent(4 * Gi + HalfGi, HalfGi + 4096, Data),
        ], extents);
        Assert.Equal(
            [(0L, (uint)Gi), (Gi, (uint)Gi), (2 * Gi, (uint)Gi), (3 * Gi, (uint)Gi), (4 * Gi, (uint)Gi), (5 * Gi, 4096u), (Gi + HalfGi, HalfGi)],
            requests.Select(r => (r.Offset, r.Length)));
        Assert.Empty(server.Failures);
    }

    [Fact(Timeout = 30000)]
    public async Task At_most_eight_pieces_are_in_flight_and_the_ninth_is_asked_for_once_the_first_is_mapped()
    {
        var order = new List<(long Offset, uint Length)>();
        await using var server = new FakeNbdServer(async c =>
        {
            async Task<FakeRequest> ReadAsync()
            {
                var request = await c.ReadRequestAsync();
                order.Add((request.Offset, request.Length));
                return request;
            }

            var pending = new Queue<FakeRequest>();
            for (var i = 0; i < 8; i++)
            {
                pending.Enqueue(await ReadAsync());
            }

            // The first piece is answered for its first half only, so the client must ask for the rest before the first
            // piece is mapped: a ninth piece asked for early (with the first eight) arrives before that re-query.
            await c.SendBlockStatusAsync(pending.Dequeue().Handle, 7, true, (HalfGi, Zero));
            var rest = await ReadAsync();
            await c.SendBlockStatusAsync(rest.Handle, 7, true, (HalfGi, Zero));
            pending.Enqueue(await ReadAsync());
            while (pending.Count > 0)
            {
                var request = pending.Dequeue();
                await c.SendBlockStatusAsync(request.Handle, 7, true, (request.Length, Zero));
            }

            await c.ReadExactAsync(1);
        })
        { ExportSize = 9 * Gi }.Start();
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithAllocation);

        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        Assert.Equal([new NbdExtent(0, 9 * Gi, Zero)], extents);
        Assert.Equal(
        [
            (0L, (uint)Gi), (Gi, (uint)Gi), (2 * Gi, (uint)Gi), (3 * Gi, (uint)Gi),
            (4 * Gi, (uint)Gi), (5 * Gi, (uint)Gi), (6 * Gi, (uint)Gi), (7 * Gi, (uint)Gi),
            (HalfGi, HalfGi), (8 * Gi, (uint)Gi),
        ], order);
        Assert.Empty(server.Failures);
    }
}
