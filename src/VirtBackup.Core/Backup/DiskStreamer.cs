using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// One disk as the backup reads it: its export (one or more connections, owned: dispose the reader), its size and
/// the ranges the stream carries.
/// </summary>
public sealed record DiskSource(string Target, NbdReaderPool Reader, IReadOnlyList<DiskExtent> Plan)
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
    /// ranges <paramref name="dirtyBitmap"/> marks when it is given. Then opens more connections to the export for
    /// the read when the server allows multi-conn and there is enough data to be worth them. Every connection uses
    /// <paramref name="tls"/> when it is given.
    /// </summary>
    public static async Task<DiskSource> OpenAsync(string target, NbdUri uri, string? dirtyBitmap, NbdTls? tls, CancellationToken cancellationToken)
    {
        var contexts = dirtyBitmap is null ? new[] { AllocationContext } : [AllocationContext, DirtyBitmapContext(dirtyBitmap)];
        var options = new NbdConnectOptions { MetaContexts = contexts, Tls = tls };
        var client = await NbdClient.ConnectAsync(uri, options, cancellationToken);
        try
        {
            var plan = dirtyBitmap is null
                ? ExtentPlan.Full(await ToListAsync(client.GetExtentsAsync(AllocationContext, 0, client.ExportSize, cancellationToken)))
                : await PlanIncrementalAsync(client, DirtyBitmapContext(dirtyBitmap), cancellationToken);
            var dataBytes = plan.Where(e => !e.Zero).Sum(e => e.Length);
            var reader = await NbdReaderPool.OpenAsync(client, NbdReaderPool.ConnectionsFor(client, dataBytes), options, cancellationToken);
            return new DiskSource(target, reader, plan);
        }
        catch
        {
            await client.DisposeAsync(); // a no-op when the pool already closed it
            throw;
        }
    }

    /// <summary>
    /// Writes the disk's map, then its data extents in order, read as one pipeline over the disk's connections with
    /// several requests in flight across extent boundaries (a fragmented disk does not drain the window at every extent).
    /// </summary>
    public static async Task StreamAsync(DiskSource disk, BackupStreamWriter writer, Action<long> progress, CancellationToken cancellationToken)
    {
        await writer.WriteDiskMapAsync(disk.Target, disk.Plan, cancellationToken);
        await ReadDataAsync(
            disk,
            async (offset, bytes) =>
            {
                await writer.WriteDiskDataAsync(disk.Target, offset, bytes, cancellationToken);
                progress(bytes.Length);
            },
            cancellationToken);
    }

    /// <summary>
    /// Reads the disk's data extents (the plan's non-zero ranges) and hands every chunk to <paramref name="sink"/>
    /// strictly in offset order; the memory is valid until the sink's task completes. This is the whole read
    /// path of a backup (benchmark 1 measures exactly this).
    /// </summary>
    public static Task ReadDataAsync(DiskSource disk, Func<long, ReadOnlyMemory<byte>, ValueTask> sink, CancellationToken cancellationToken)
    {
        var data = disk.Plan.Where(e => !e.Zero).Select(e => new NbdRange(e.Offset, e.Length)).ToList();
        return disk.Reader.ReadRangesAsync(data, sink, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// The dirty bitmap first, then base:allocation only where it marks changes: an incremental of a few changed
    /// ranges does not map the whole disk twice. Many dirty ranges (a busy disk) get one map of the whole disk instead.
    /// </summary>
    private static async Task<IReadOnlyList<DiskExtent>> PlanIncrementalAsync(NbdClient client, string dirtyContext, CancellationToken cancellationToken)
    {
        var dirty = await ToListAsync(client.GetExtentsAsync(dirtyContext, 0, client.ExportSize, cancellationToken));
        var changed = dirty.Where(e => e.IsDirty).ToList();
        List<NbdExtent> allocation;
        if (changed.Count > MaxAllocationQueries)
        {
            allocation = await ToListAsync(client.GetExtentsAsync(AllocationContext, 0, client.ExportSize, cancellationToken));
        }
        else
        {
            allocation = [];
            foreach (var range in changed)
            {
                // Clipped: the last extent of a reply may reach past the range asked about.
                allocation.AddRange((await ToListAsync(client.GetExtentsAsync(AllocationContext, range.Offset, range.Length, cancellationToken)))
                    .Select(e => e with { Offset = Math.Max(e.Offset, range.Offset), Length = Math.Min(e.End, range.End) - Math.Max(e.Offset, range.Offset) })
                    .Where(e => e.Length > 0));
            }
        }

        return ExtentPlan.Incremental(allocation, changed);
    }

    /// <summary>Above this many dirty ranges, one base:allocation map of the whole disk is cheaper than one per range.</summary>
    private const int MaxAllocationQueries = 16;

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
