using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>One disk as the backup reads it: its export, its size and the ranges the stream carries.</summary>
public sealed record DiskSource(string Target, NbdClient Client, IReadOnlyList<DiskExtent> Plan)
{
    public long DataBytes => Plan.Where(e => !e.Zero).Sum(e => e.Length);
}

/// <summary>Reads disks over NBD into the stream writer: a short loop over planned extents.</summary>
public static class DiskStreamer
{
    public const string AllocationContext = "base:allocation";

    public static string DirtyBitmapContext(string bitmap) => $"qemu:dirty-bitmap:{bitmap}";

    /// <summary>
    /// Connects to <paramref name="uri"/> and plans the disk: every range for a full read, or only the
    /// ranges <paramref name="dirtyBitmap"/> marks when it is given.
    /// </summary>
    public static async Task<DiskSource> OpenAsync(string target, NbdUri uri, string? dirtyBitmap, CancellationToken cancellationToken)
    {
        var contexts = dirtyBitmap is null ? new[] { AllocationContext } : [AllocationContext, DirtyBitmapContext(dirtyBitmap)];
        var client = await NbdClient.ConnectAsync(uri, new NbdConnectOptions { MetaContexts = contexts }, cancellationToken);
        try
        {
            var allocation = await ToListAsync(client.GetExtentsAsync(AllocationContext, 0, client.ExportSize, cancellationToken));
            var plan = dirtyBitmap is null
                ? ExtentPlan.Full(allocation)
                : ExtentPlan.Incremental(allocation, await ToListAsync(client.GetExtentsAsync(DirtyBitmapContext(dirtyBitmap), 0, client.ExportSize, cancellationToken)));
            return new DiskSource(target, client, plan);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Writes the disk's map, then its data extents in order, read as one pipeline with several requests in
    /// flight across extent boundaries (a fragmented disk does not drain the window at every extent).
    /// </summary>
    public static async Task StreamAsync(DiskSource disk, BackupStreamWriter writer, Action<long> progress, CancellationToken cancellationToken)
    {
        await writer.WriteDiskMapAsync(disk.Target, disk.Plan, cancellationToken);
        var data = disk.Plan.Where(e => !e.Zero).Select(e => new NbdRange(e.Offset, e.Length)).ToList();
        await disk.Client.ReadRangesAsync(
            data,
            async (offset, bytes) =>
            {
                await writer.WriteDiskDataAsync(disk.Target, offset, bytes, cancellationToken);
                progress(bytes.Length);
            },
            ct: cancellationToken);
    }

    private static async Task<List<NbdExtent>> ToListAsync(IAsyncEnumerable<NbdExtent> extents)
    {
        var list = new List<NbdExtent>();
        await foreach (var e in extents)
        {
            list.Add(e);
        }

        return list;
    }
}
