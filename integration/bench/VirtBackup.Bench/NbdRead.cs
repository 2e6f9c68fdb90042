using System.Diagnostics;
using VirtBackup.Core.Backup;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 1's "ours": read every allocated extent of an export with VirtBackup's NBD client and
/// discard the data, the way <c>nbdcopy URI null:</c> does. Runs as its own process (like nbdcopy), so the
/// harness times both the same way.
/// </summary>
internal static class NbdRead
{
    /// <summary>Reads the export; returns the data bytes read.</summary>
    public static async Task<long> RunAsync(NbdUri uri, int chunkSize, int inFlight, CancellationToken cancellationToken)
    {
        await using var client = await NbdClient.ConnectAsync(
            uri, new NbdConnectOptions { MetaContexts = [DiskStreamer.AllocationContext] }, cancellationToken);
        var data = new List<NbdExtent>();
        await foreach (var extent in client.GetExtentsAsync(DiskStreamer.AllocationContext, 0, client.ExportSize, cancellationToken))
        {
            if (!extent.IsZero)
            {
                data.Add(extent);
            }
        }

        long bytes = 0;
        foreach (var extent in data)
        {
            await client.ReadRangeAsync(
                extent.Offset,
                extent.Length,
                (_, chunk) =>
                {
                    bytes += chunk.Length;
                    return ValueTask.CompletedTask;
                },
                chunkSize,
                inFlight,
                cancellationToken);
        }

        return bytes;
    }

    /// <summary>
    /// An experiment, not what VirtBackup does: <paramref name="connections"/> connections (the export allows
    /// multi-conn), chunk k on connection k % n, one ordered window over all of them.
    /// </summary>
    public static async Task<long> RunMultiAsync(NbdUri uri, int chunkSize, int inFlight, int connections)
    {
        var clients = new List<NbdClient>();
        for (var i = 0; i < connections; i++)
            clients.Add(await NbdClient.ConnectAsync(uri, new NbdConnectOptions { MetaContexts = [DiskStreamer.AllocationContext] }));
        var data = new List<NbdExtent>();
        await foreach (var extent in clients[0].GetExtentsAsync(DiskStreamer.AllocationContext, 0, clients[0].ExportSize))
            if (!extent.IsZero) data.Add(extent);
        var chunks = data.SelectMany(e => Enumerable.Range(0, (int)((e.Length + chunkSize - 1) / chunkSize))
            .Select(k => (Offset: e.Offset + (long)k * chunkSize, Length: (int)Math.Min(chunkSize, e.Length - (long)k * chunkSize)))).ToList();
        var window = new Queue<(byte[] Buffer, Task Read)>();
        long bytes = 0;
        var next = 0;
        while (next < chunks.Count || window.Count > 0)
        {
            while (window.Count < inFlight && next < chunks.Count)
            {
                var (offset, length) = chunks[next];
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
                window.Enqueue((buffer, clients[next % connections].ReadAsync(offset, buffer.AsMemory(0, length))));
                bytes += length;
                next++;
            }

            var (b, read) = window.Dequeue();
            await read;
            System.Buffers.ArrayPool<byte>.Shared.Return(b);
        }

        foreach (var c in clients) await c.DisposeAsync();
        return bytes;
    }

    /// <summary>The <c>nbd-read</c> verb: prints "BYTES SECONDS" (seconds from connect to the last byte).</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var uri = NbdUri.Parse(args[0]);
        var chunk = args.Length > 1 ? int.Parse(args[1]) * 1024 * 1024 : NbdClient.DefaultReadChunkSize;
        var inFlight = args.Length > 2 ? int.Parse(args[2]) : NbdClient.DefaultReadsInFlight;
        var clock = Stopwatch.StartNew();
        var connections = args.Length > 3 ? int.Parse(args[3]) : 1;
        var bytes = connections == 1
            ? await RunAsync(uri, chunk, inFlight, CancellationToken.None)
            : await RunMultiAsync(uri, chunk, inFlight, connections);
        Console.WriteLine($"{bytes} {clock.Elapsed.TotalSeconds:F3}");
        return 0;
    }
}
