using System.Diagnostics;
using System.Threading.Channels;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// Maps a whole disk (base:allocation) in the background, one map piece (<see cref="StreamRules.MapPieceSize"/> of the
/// disk) at a time, so the backup writes a piece and reads its data while the rest of the disk is still being mapped.
/// At most <see cref="PiecesAhead"/> pieces wait to be taken: memory stays flat however many extents the disk has.
/// </summary>
internal sealed class MapDiscovery : IAsyncDisposable
{
    /// <summary>Pieces mapped ahead of the one being read (64 GiB of the disk).</summary>
    internal const int PiecesAhead = 4;

    private readonly Channel<ExtentList> _pieces = Channel.CreateBounded<ExtentList>(
        new BoundedChannelOptions(PiecesAhead) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly NbdClient _client;
    private readonly Task _run;
    private long _dataBytes;
    private long _dataExtents;

    private MapDiscovery(NbdClient client)
    {
        _client = client;
        PieceCount = StreamRules.MapPieceCount(client.ExportSize, Manifest.CurrentFormatVersion);
        _run = Task.Run(RunAsync);
    }

    public int PieceCount { get; }

    /// <summary>Bytes of data extents mapped so far (all of them once <see cref="Completion"/> is done).</summary>
    public long DataBytes => Volatile.Read(ref _dataBytes);

    public long DataExtents => Volatile.Read(ref _dataExtents);

    /// <summary>Completes when the whole disk is mapped; faults as the mapping did.</summary>
    public Task Completion => _run;

    /// <summary>How long the mapping took, once <see cref="Completion"/> is done.</summary>
    public TimeSpan Elapsed { get; private set; }

    public static MapDiscovery Start(NbdClient client) => new(client);

    /// <summary>The next piece, in order; throws what the mapping threw.</summary>
    public async Task<ExtentList> NextPieceAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _pieces.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is { } inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            throw;
        }
    }

    private async Task RunAsync()
    {
        try
        {
            var index = 0;
            var (_, end) = StreamRules.MapPieceRange(_client.ExportSize, 0, Manifest.CurrentFormatVersion);
            var piece = new ExtentList();
            await foreach (var e in _client.GetExtentsAsync(DiskStreamer.AllocationContext, 0, _client.ExportSize, _stop.Token).ConfigureAwait(false))
            {
                for (var pos = e.Offset; pos < e.End;)
                {
                    while (pos >= end)
                    {
                        await EmitAsync(piece).ConfigureAwait(false);
                        piece = new ExtentList();
                        (_, end) = StreamRules.MapPieceRange(_client.ExportSize, ++index, Manifest.CurrentFormatVersion);
                    }

                    var to = Math.Min(e.End, end);
                    ExtentPlan.AddAllocation(piece, e with { Offset = pos, Length = to - pos });
                    pos = to;
                }
            }

            for (; index < PieceCount; index++)
            {
                await EmitAsync(piece).ConfigureAwait(false);
                piece = new ExtentList();
            }

            Elapsed = _clock.Elapsed;
            _pieces.Writer.Complete();
        }
        catch (Exception e)
        {
            _pieces.Writer.Complete(e);
            throw;
        }
    }

    private async Task EmitAsync(ExtentList piece)
    {
        long bytes = 0, extents = 0;
        foreach (var e in piece)
        {
            if (!e.Zero)
            {
                bytes += e.Length;
                extents++;
            }
        }

        Interlocked.Add(ref _dataBytes, bytes);
        Interlocked.Add(ref _dataExtents, extents);
        await _pieces.Writer.WriteAsync(piece, _stop.Token).ConfigureAwait(false);
    }

    /// <summary>Stops the mapping (if still running) and waits for it: the connection is then free to close.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _run.ConfigureAwait(false);
        }
        catch
        {
            // Reported through NextPieceAsync to the reader of the pieces, or no longer of interest.
        }

        _stop.Dispose();
    }
}
