using VirtBackup.Core.Backup;
using VirtBackup.Core.Stream;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Backup;

/// <summary>
/// An incremental reads the dirty bitmap on a connection of its own: a server answers BLOCK_STATUS for every context a
/// connection negotiated, so with base:allocation beside the bitmap, the bitmap's map of the whole disk would cost the
/// allocation map of the whole disk too (2.96 s against 0.04 s on the 1 TiB scale disk).
/// </summary>
public sealed class IncrementalContextsTests
{
    private const int Ki = 1024;
    private const string Bitmap = "qemu:dirty-bitmap:b0";
    private const string Allocation = "base:allocation";

    [Fact(Timeout = 30_000)]
    public async Task The_dirty_bitmap_is_read_on_a_connection_that_negotiates_only_the_bitmap_and_allocation_on_the_others()
    {
        var allocationAsked = new List<(long Offset, uint Length)>();
        await using var server = new FakeNbdServer(async c =>
        {
            while (true)
            {
                var request = await c.ReadRequestAsync();
                switch (request.Type)
                {
                    case 2: // DISC
                        return;
                    case 0: // READ
                        await c.SendDataAsync(request.Handle, request.Offset, new byte[request.Length], done: true);
                        break;
                    case 7: // BLOCK_STATUS: one chunk per negotiated context
                        for (var i = 0; i < c.MetaContexts.Count; i++)
                        {
                            var last = i == c.MetaContexts.Count - 1;
                            if (c.MetaContexts[i] == Bitmap)
                            {
                                // [64 KiB, 128 KiB) changed, the rest not.
                                await c.SendBlockStatusAsync(request.Handle, 8, last, (64 * Ki, 0), (64 * Ki, 1), (request.Length - 128 * Ki, 0));
                            }
                            else
                            {
                                lock (allocationAsked)
                                {
                                    allocationAsked.Add((request.Offset, request.Length));
                                }

                                await c.SendBlockStatusAsync(request.Handle, 7, last, (request.Length, 0));
                            }
                        }

                        break;
                    default:
                        throw new InvalidOperationException($"unexpected request type {request.Type}");
                }
            }
        })
        {
            Contexts = new() { [Allocation] = 7, [Bitmap] = 8 },
        };
        server.Start();

        var disk = await DiskStreamer.OpenAsync("vda", server.Uri, "b0", tls: null, CancellationToken.None);
        await disk.DisposeAsync();

        Assert.Equal([new DiskExtent(64 * Ki, 64 * Ki, false)], disk.Plan);
        var connections = server.Connections;
        // The bitmap's connection, then the read's one (the fake server offers no multi-conn).
        Assert.Equal([[Bitmap], [Allocation]], connections.Select(c => c.MetaContexts.ToArray()));
        Assert.Equal([(64L * Ki, (uint)(64 * Ki))], allocationAsked); // only the changed range's allocation was asked for
        Assert.Empty(server.Failures);
    }
}
