using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// One disk as the backup reads it: its export (one or more connections, owned: dispose the source), its size and the
/// ranges the stream carries: a whole <see cref="Plan"/> (an incremental's changed ranges), or, for a full read, the map
/// <see cref="Discovery"/> still builds while the data is read.
/// </summary>
public sealed class DiskSource : IAsyncDisposable
{
    private readonly ExtentList? _firstPiece;

    internal DiskSource(string target, NbdReaderPool reader, IReadOnlyList<DiskExtent>? plan, MapDiscovery? discovery, ExtentList? firstPiece)
    {
        Target = target;
        Reader = reader;
        Plan = plan;
        Discovery = discovery;
        _firstPiece = firstPiece;
    }

    /// <summary>A source of a whole plan (tests, benchmarks): nothing is mapped in the background.</summary>
    public DiskSource(string target, NbdReaderPool reader, IReadOnlyList<DiskExtent> plan)
        : this(target, reader, plan, null, null)
    {
    }

    public string Target { get; }

    public NbdReaderPool Reader { get; }

    /// <summary>The whole plan, when it was known before the read; null while a full read maps the disk as it goes.</summary>
    public IReadOnlyList<DiskExtent>? Plan { get; }

    internal MapDiscovery? Discovery { get; }

    /// <summary>Bytes of data to read: all of them for a plan; for a disk being mapped, those mapped so far.</summary>
    public long DataBytes => Plan is { } plan ? DiskStreamer.DataBytesOf(plan) : Discovery!.DataBytes;

    /// <summary>Completes when the disk is mapped (at once for a whole plan); its result is the mapping's duration, or null.</summary>
    public async Task<TimeSpan?> MappedAsync()
    {
        if (Discovery is null)
        {
            return null;
        }

        await Discovery.Completion.ConfigureAwait(false);
        return Discovery.Elapsed;
    }

    /// <summary>The ranges in map pieces (one piece: the whole plan), in order; each is read before the next is asked for.</summary>
    internal async IAsyncEnumerable<(IReadOnlyList<DiskExtent> Extents, bool Whole)> PiecesAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Plan is { } plan)
        {
            yield return (plan, true);
            yield break;
        }

        yield return (_firstPiece!, false);
        for (var i = 1; i < Discovery!.PieceCount; i++)
        {
            yield return (await Discovery.NextPieceAsync(cancellationToken).ConfigureAwait(false), false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Discovery is not null)
        {
            await Discovery.DisposeAsync().ConfigureAwait(false);
        }

        await Reader.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Reads disks over NBD into the stream writer: a short loop over planned extents.</summary>
public static class DiskStreamer
{
    public const string AllocationContext = "base:allocation";

    public static string DirtyBitmapContext(string bitmap) => $"qemu:dirty-bitmap:{bitmap}";

    /// <summary>
    /// Connects to <paramref name="uri"/> and plans the disk: only the ranges <paramref name="dirtyBitmap"/> marks when it
    /// is given (planned whole, now); else every range, mapped in the background while the data is read (only the first
    /// map piece is waited for). Then opens more connections to the export for the read when the server allows
    /// multi-conn and there is enough data in large enough extents to be worth them (judged on the first piece when
    /// the disk is still being mapped). Every connection uses <paramref name="tls"/> when it is given.
    /// </summary>
    public static async Task<DiskSource> OpenAsync(string target, NbdUri uri, string? dirtyBitmap, NbdTls? tls, CancellationToken cancellationToken)
    {
        var options = new NbdConnectOptions { MetaContexts = [AllocationContext], Tls = tls };
        var changed = dirtyBitmap is null ? null : await ReadDirtyRangesAsync(uri, options, DirtyBitmapContext(dirtyBitmap), cancellationToken);
        var client = await NbdClient.ConnectAsync(uri, options, cancellationToken);
        MapDiscovery? discovery = null;
        try
        {
            if (changed is not null)
            {
                var plan = await PlanIncrementalAsync(client, changed, cancellationToken);
                var reader = await NbdReaderPool.OpenAsync(client, NbdReaderPool.ConnectionsFor(client, DataBytesOf(plan), DataExtentsOf(plan)), options, cancellationToken);
                return new DiskSource(target, reader, plan);
            }

            discovery = MapDiscovery.Start(client);
            var first = await discovery.NextPieceAsync(cancellationToken);
            var connections = NbdReaderPool.ConnectionsFor(client, DataBytesOf(first), DataExtentsOf(first));
            var pool = await NbdReaderPool.OpenAsync(client, connections, options, cancellationToken);
            return new DiskSource(target, pool, null, discovery, first);
        }
        catch
        {
            if (discovery is not null)
            {
                await discovery.DisposeAsync();
            }

            await client.DisposeAsync(); // a no-op when the pool already closed it
            throw;
        }
    }

    /// <summary>
    /// Writes the disk's map (a version-3 stream: piece by piece, as the disk is mapped) and, after each piece, its data
    /// extents in order, read as one pipeline over the disk's connections with several requests in flight across extent
    /// boundaries (a fragmented disk does not drain the window at every extent).
    /// </summary>
    public static async Task StreamAsync(DiskSource disk, BackupStreamWriter writer, Action<long> progress, CancellationToken cancellationToken)
    {
        await foreach (var (extents, whole) in disk.PiecesAsync(cancellationToken))
        {
            if (whole)
            {
                await writer.WriteDiskMapAsync(disk.Target, extents, cancellationToken);
            }
            else
            {
                await writer.WriteDiskMapPieceAsync(disk.Target, extents, cancellationToken);
            }

            await disk.Reader.ReadRangesAsync(
                new DataRanges(extents),
                async (offset, bytes) =>
                {
                    await writer.WriteDiskDataAsync(disk.Target, offset, bytes, cancellationToken);
                    progress(bytes.Length);
                },
                cancellationToken: cancellationToken);
        }
    }

    /// <summary>
    /// Reads the disk's data extents (the plan's non-zero ranges) and hands every chunk to <paramref name="sink"/>
    /// strictly in offset order; the memory is valid until the sink's task completes. This is the whole read
    /// path of a backup (benchmark 1 measures exactly this).
    /// </summary>
    public static async Task ReadDataAsync(DiskSource disk, Func<long, ReadOnlyMemory<byte>, ValueTask> sink, CancellationToken cancellationToken)
    {
        await foreach (var (extents, _) in disk.PiecesAsync(cancellationToken))
        {
            await disk.Reader.ReadRangesAsync(new DataRanges(extents), sink, cancellationToken: cancellationToken);
        }
    }

    /// <summary>Bytes of the plan's data extents.</summary>
    public static long DataBytesOf(IReadOnlyList<DiskExtent> plan)
    {
        long bytes = 0;
        for (var i = 0; i < plan.Count; i++)
        {
            bytes += plan[i].Zero ? 0 : plan[i].Length;
        }

        return bytes;
    }

    /// <summary>How many of the plan's extents are data.</summary>
    public static long DataExtentsOf(IReadOnlyList<DiskExtent> plan)
    {
        long count = 0;
        for (var i = 0; i < plan.Count; i++)
        {
            count += plan[i].Zero ? 0 : 1;
        }

        return count;
    }

    /// <summary>
    /// The ranges the dirty bitmap marks, read on a connection of its own that negotiates only the bitmap and is closed
    /// before the read's connections open (qemu-nbd serves one client unless told otherwise). A server answers a
    /// BLOCK_STATUS for every negotiated context: with base:allocation beside it, the bitmap's map of a whole disk costs
    /// the allocation map of the whole disk too. On the 1 TiB scale disk (60,000 extents) that was 2.96 s; alone, 0.04 s.
    /// </summary>
    private static async Task<ExtentList> ReadDirtyRangesAsync(NbdUri uri, NbdConnectOptions options, string dirtyContext, CancellationToken cancellationToken)
    {
        var changed = new ExtentList();
        await using var client = await NbdClient.ConnectAsync(uri, options with { MetaContexts = [dirtyContext] }, cancellationToken);
        await foreach (var e in client.GetExtentsAsync(dirtyContext, 0, client.ExportSize, cancellationToken))
        {
            ExtentPlan.AddDirty(changed, e);
        }

        return changed;
    }

    /// <summary>
    /// base:allocation only where the dirty bitmap marks changes: an incremental of a few changed ranges does not map the
    /// whole disk. The per-range queries are pipelined, <see cref="AllocationQueriesInFlight"/> at a time. Many dirty
    /// ranges (a busy disk) get one map of the whole disk instead.
    /// </summary>
    private static async Task<ExtentList> PlanIncrementalAsync(NbdClient client, ExtentList changed, CancellationToken cancellationToken)
    {
        var plan = new ExtentPlan.DirtyIntersection(changed);
        if (changed.Count > MaxAllocationQueries(client.ExportSize))
        {
            await foreach (var e in client.GetExtentsAsync(AllocationContext, 0, client.ExportSize, cancellationToken))
            {
                plan.Add(e);
            }

            return plan.Plan;
        }

        var inFlight = new Queue<(DiskExtent Range, Task<IReadOnlyList<NbdExtent>> Reply)>();
        try
        {
            foreach (var range in changed)
            {
                inFlight.Enqueue((range, client.BlockStatusAsync(AllocationContext, range.Offset, range.Length, cancellationToken)));
                if (inFlight.Count >= AllocationQueriesInFlight)
                {
                    await AddRangeAsync(client, plan, inFlight.Dequeue(), cancellationToken);
                }
            }

            while (inFlight.Count > 0)
            {
                await AddRangeAsync(client, plan, inFlight.Dequeue(), cancellationToken);
            }
        }
        finally
        {
            // After a failure, the queries still in flight end with the connection; their outcome no longer matters.
            foreach (var (_, reply) in inFlight)
            {
                _ = reply.ContinueWith(static t => t.Exception, TaskScheduler.Default);
            }
        }

        return plan.Plan;
    }

    /// <summary>
    /// Adds one dirty range's allocation: the first reply's extents, clipped to the range (the last one may reach past it),
    /// then more queries for any part of the range the reply did not cover.
    /// </summary>
    private static async Task AddRangeAsync(
        NbdClient client, ExtentPlan.DirtyIntersection plan, (DiskExtent Range, Task<IReadOnlyList<NbdExtent>> Reply) query, CancellationToken cancellationToken)
    {
        var range = query.Range;
        var covered = range.Offset;
        foreach (var e in await query.Reply)
        {
            covered = AddClipped(plan, e, range);
            if (covered == range.End)
            {
                return;
            }
        }

        await foreach (var e in client.GetExtentsAsync(AllocationContext, covered, range.End - covered, cancellationToken))
        {
            AddClipped(plan, e, range);
        }
    }

    /// <summary>Adds the part of <paramref name="e"/> inside <paramref name="range"/>; returns where that part ends.</summary>
    private static long AddClipped(ExtentPlan.DirtyIntersection plan, NbdExtent e, DiskExtent range)
    {
        var start = Math.Max(e.Offset, range.Offset);
        var end = Math.Min(e.End, range.End);
        plan.Add(e with { Offset = start, Length = end - start });
        return end;
    }

    /// <summary>
    /// Above this many dirty ranges, one base:allocation map of the whole disk is cheaper than one query per range: one
    /// per 16 MiB of disk, at least 16. Measured on the 1 TiB scale disk (60,000 extents, qemu-nbd): the whole map takes
    /// 2.7 s, 5,000 per-range queries 0.48 s; a map's cost grows with the disk, a query's does not.
    /// </summary>
    internal static long MaxAllocationQueries(long exportSize) => Math.Max(16, exportSize / (16L << 20));

    /// <summary>Per-range allocation queries kept in flight on the one connection.</summary>
    private const int AllocationQueriesInFlight = 64;

    /// <summary>
    /// The plan as the ranges to read, with no copy: a zero extent is an empty range there, which the read skips.
    /// </summary>
    private sealed class DataRanges(IReadOnlyList<DiskExtent> plan) : IReadOnlyList<NbdRange>
    {
        public int Count => plan.Count;

        public NbdRange this[int index] => plan[index] is var e && e.Zero ? new NbdRange(e.Offset, 0) : new NbdRange(e.Offset, e.Length);

        public IEnumerator<NbdRange> GetEnumerator()
        {
            for (var i = 0; i < Count; i++)
            {
                yield return this[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
