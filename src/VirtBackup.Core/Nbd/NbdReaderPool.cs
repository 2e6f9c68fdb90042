using System.Runtime.ExceptionServices;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// Several connections to one export, read as one stream: chunk k of the ranges goes to connection k % N, and the
/// chunks reach the sink strictly in order through one bounded window. One connection has one reply thread
/// receiving and copying every byte, which does not keep up with <c>nbdcopy</c> (it spreads the work over 4
/// multi-conn connections); several do. More than one connection is used only when the server advertises
/// NBD_FLAG_CAN_MULTI_CONN. The pool owns its connections: disposing it closes all of them, and a read that
/// fails or is cancelled closes all of them before it throws.
/// </summary>
public sealed class NbdReaderPool : IAsyncDisposable
{
    /// <summary>4 connections matched <c>nbdcopy URI null:</c> on a libvirt pull-mode export (2 cores).</summary>
    public const int DefaultMaxConnections = 4;

    /// <summary>At most this many bytes of READs are outstanding (and buffered) across all connections.</summary>
    public const int DefaultWindowBytes = 32 * 1024 * 1024;

    /// <summary>Below this much data per extra connection, another connection costs more than it gains.</summary>
    public const long BytesPerConnection = 64L * 1024 * 1024;

    /// <summary>
    /// Below this mean extent length one connection reads faster: every request is small, so what bounds the read is
    /// QEMU's cost per request, not the one reply thread's copying, and more connections only add QEMU coroutines and
    /// wake-ups. On the 1 TiB scale disk (60,000 extents of 64 KiB, 2 cores), with the CLI's thread pool not spinning:
    /// 10.81 s against 11.40 s with four and spinning (medians of 5 interleaved pairs), 0.4-0.9 s less system time, QEMU
    /// 0.4 s less CPU; one connection alone, with spinning, was inside the noise (10.8 against 11.5 s, 12.6 against
    /// 12.5 s in two sets of 4). The benchmark disk's large extents keep four.
    /// </summary>
    public const long SmallExtentBytes = 256 * 1024;

    private readonly NbdClient[] _clients;
    private int _closed;

    private NbdReaderPool(NbdClient[] clients) => _clients = clients;

    /// <summary>The first connection: block status and anything else that needs only one.</summary>
    public NbdClient Primary => _clients[0];

    public IReadOnlyList<NbdClient> Clients => _clients;

    public long ExportSize => Primary.ExportSize;

    /// <summary>
    /// How many connections are worth opening to read <paramref name="dataBytes"/> in <paramref name="dataExtents"/>
    /// extents: one per <see cref="BytesPerConnection"/>, at most <paramref name="maxConnections"/>, one unless the
    /// server allows multi-conn, and one when the extents are small (a mean below <see cref="SmallExtentBytes"/>).
    /// </summary>
    public static int ConnectionsFor(NbdClient primary, long dataBytes, long dataExtents, int maxConnections = DefaultMaxConnections)
    {
        ArgumentNullException.ThrowIfNull(primary);
        if (!primary.CanMultiConn || maxConnections <= 1 || (dataExtents > 0 && dataBytes / dataExtents < SmallExtentBytes))
        {
            return 1;
        }

        return (int)Math.Clamp((dataBytes + BytesPerConnection - 1) / BytesPerConnection, 1, maxConnections);
    }

    /// <summary>
    /// Takes ownership of <paramref name="primary"/> and opens <paramref name="connections"/> - 1 more connections to
    /// its export with <paramref name="options"/> (the primary's, so every connection negotiates the same contexts),
    /// in parallel. A server without multi-conn gets no extra connection. On failure every connection is closed.
    /// </summary>
    public static async Task<NbdReaderPool> OpenAsync(
        NbdClient primary, int connections, NbdConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(connections);
        if (!primary.CanMultiConn)
        {
            connections = 1;
        }

        var extra = Enumerable.Range(1, connections - 1).Select(_ => NbdClient.ConnectAsync(primary.Uri, options, cancellationToken)).ToList();
        try
        {
            await Task.WhenAll(extra).ConfigureAwait(false);
        }
        catch
        {
            await Task.WhenAll(extra.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result.DisposeAsync().AsTask()).Append(primary.DisposeAsync().AsTask()))
                .ConfigureAwait(false);
            throw;
        }

        return new NbdReaderPool([primary, .. extra.Select(t => t.Result)]);
    }

    /// <summary>Connects to <paramref name="uri"/> with up to <paramref name="connections"/> connections.</summary>
    public static async Task<NbdReaderPool> ConnectAsync(
        NbdUri uri, int connections = DefaultMaxConnections, NbdConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        var primary = await NbdClient.ConnectAsync(uri, options, cancellationToken).ConfigureAwait(false);
        return await OpenAsync(primary, connections, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads <paramref name="ranges"/> in <paramref name="chunkSize"/> chunks spread round-robin over the connections,
    /// at most <paramref name="windowBytes"/> outstanding (at least one chunk per connection), and calls
    /// <paramref name="sink"/> with each chunk's offset and bytes in the order of the ranges, within a range in offset
    /// order. The memory passed to the sink is pooled: valid only until the sink's task completes. The first READ
    /// to fail (on any connection) cancels the rest, closes every connection and is what this throws: the
    /// <see cref="NbdException"/> naming its offset. Cancellation also closes every connection.
    /// </summary>
    public async Task ReadRangesAsync(
        IReadOnlyList<NbdRange> ranges,
        Func<long, ReadOnlyMemory<byte>, ValueTask> sink,
        int chunkSize = NbdClient.DefaultReadChunkSize,
        int windowBytes = DefaultWindowBytes,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowBytes);
        ObjectDisposedException.ThrowIf(_closed != 0, this);
        chunkSize = OrderedChunkWindow.FitChunkSize(chunkSize, Primary.MaxPayloadLength, Primary.MinimumBlockSize);
        foreach (var range in ranges)
        {
            if (range.Offset < 0 || range.Length < 0 || range.End > ExportSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ranges), $"The range [{range.Offset}, {range.End}) is outside the export (size {ExportSize}).");
            }
        }

        var inFlight = Math.Max(_clients.Length, windowBytes / chunkSize);
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ExceptionDispatchInfo? failure = null;
        long chunkIndex = 0;
        try
        {
            await OrderedChunkWindow.RunAsync(
                ranges,
                chunkSize,
                inFlight,
                (offset, buffer) => ReadAsync(_clients[chunkIndex++ % _clients.Length], offset, buffer),
                sink,
                cancellationToken,
                readFailed: () => failure!.Throw(), // the first READ to fail, on whichever connection
                abandoning: () => failFast.CancelAsync()).ConfigureAwait(false);
        }
        catch (Exception)
        {
            await CloseAsync().ConfigureAwait(false);
            throw;
        }

        async Task ReadAsync(NbdClient client, long offset, Memory<byte> buffer)
        {
            try
            {
                await client.ReadAsync(offset, buffer, failFast.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                if (Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(e), null) is null)
                {
                    failFast.Cancel();
                }

                throw;
            }
        }
    }

    /// <summary>Closes every connection (politely: NBD_CMD_DISC), in parallel.</summary>
    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private async Task CloseAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        await Task.WhenAll(_clients.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
    }
}
