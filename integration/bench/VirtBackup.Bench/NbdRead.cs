using System.Diagnostics;
using VirtBackup.Core.Backup;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Bench;

/// <summary>
/// Benchmark 1's "ours": read every allocated extent of an export the way a backup does (DiskStreamer: connect,
/// map base:allocation, open the multi-conn reader pool, read the data extents in order) and discard the data,
/// the way <c>nbdcopy URI null:</c> does. Runs as its own process (like nbdcopy), so the harness times both the
/// same way.
/// </summary>
internal static class NbdRead
{
    /// <summary>Reads the export; returns the data bytes read and the number of connections used.</summary>
    public static async Task<(long Bytes, int Connections)> RunAsync(NbdUri uri, CancellationToken cancellationToken)
    {
        var disk = await DiskStreamer.OpenAsync("vda", uri, dirtyBitmap: null, tls: null, cancellationToken);
        await using (disk.Reader)
        {
            long bytes = 0;
            await DiskStreamer.ReadDataAsync(
                disk,
                (_, chunk) =>
                {
                    bytes += chunk.Length;
                    return ValueTask.CompletedTask;
                },
                cancellationToken);
            return (bytes, disk.Reader.Clients.Count);
        }
    }

    /// <summary>The <c>nbd-read</c> verb: prints "BYTES SECONDS CONNECTIONS" (seconds from connect to the last byte).</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var uri = NbdUri.Parse(args[0]);
        var clock = Stopwatch.StartNew();
        var (bytes, connections) = await RunAsync(uri, CancellationToken.None);
        Console.WriteLine($"{bytes} {clock.Elapsed.TotalSeconds:F3} {connections}");
        return 0;
    }
}
