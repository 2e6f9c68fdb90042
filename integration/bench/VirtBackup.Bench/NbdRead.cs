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

    /// <summary>The <c>nbd-read</c> verb: prints "BYTES SECONDS" (seconds from connect to the last byte).</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var uri = NbdUri.Parse(args[0]);
        var chunk = args.Length > 1 ? int.Parse(args[1]) * 1024 * 1024 : NbdClient.DefaultReadChunkSize;
        var inFlight = args.Length > 2 ? int.Parse(args[2]) : NbdClient.DefaultReadsInFlight;
        var clock = Stopwatch.StartNew();
        var bytes = await RunAsync(uri, chunk, inFlight, CancellationToken.None);
        Console.WriteLine($"{bytes} {clock.Elapsed.TotalSeconds:F3}");
        return 0;
    }
}
