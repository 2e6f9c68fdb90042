using Microsoft.Win32.SafeHandles;
using static VirtBackup.Core.Restore.Qcow2.Qcow2Layout;

namespace VirtBackup.Core.Restore.Qcow2;

/// <summary>
/// A new qcow2 image (no backing file) written directly, without qemu-nbd: the restore of a full or copy stream on
/// this host. A stream's data comes in disk order, so the image is laid out the way <c>qemu-img convert</c> would:
/// <list type="bullet">
/// <item>cluster 0 the header and cluster 1 on the L1 table, both written last;</item>
/// <item>then each data cluster appended as it completes, its L2 table placed before the first cluster it maps;
/// appended clusters go out in writes of up to <see cref="StageSize"/> bytes, one in flight while the next fills;</item>
/// <item>the refcount table and blocks at the end, every cluster counted once.</item>
/// </list>
/// Clusters that hold only zeros stay unallocated (the image reads as zeros there), so it stays thin. Memory is one
/// cluster, one L2 table, the L1 table (16 KiB per TiB) and two stage buffers, whatever the number of extents. Writes
/// out of order are correct too (an allocated cluster is read back and rewritten in place, an L2 table reloaded), only
/// slower. <see cref="FinishAsync"/> fsyncs; until then the file is not an image. <see cref="Counts"/> counts the data
/// clusters written (a cluster written twice counts twice).
/// </summary>
internal sealed class Qcow2FileWriter : IImageWriter
{
    private const int StageSize = 4 << 20;

    private readonly FileStream _file;
    private readonly SafeFileHandle _handle;
    private readonly long _virtualSize;
    private readonly ulong[] _l1;
    private readonly byte[] _table = GC.AllocateUninitializedArray<byte>(ClusterSize);

    private long _end;

    private long _cluster = -1;
    private readonly byte[] _clusterData = GC.AllocateUninitializedArray<byte>(ClusterSize);
    private bool _clusterDirty;

    private long _l2Index = -1;
    private readonly ulong[] _l2 = new ulong[L2Entries];
    private long _l2Host;
    private bool _l2Dirty;

    private byte[] _stage = GC.AllocateUninitializedArray<byte>(StageSize);
    private byte[] _spare = GC.AllocateUninitializedArray<byte>(StageSize);
    private long _stageHost;
    private int _stageLength;
    private Task _inFlight = Task.CompletedTask;
    private bool _closed;

    private Qcow2FileWriter(FileStream file, long virtualSize)
    {
        _file = file;
        _handle = file.SafeFileHandle;
        _virtualSize = virtualSize;
        _l1 = new ulong[L1Size(virtualSize)];
        _end = ClusterSize * (1 + Clusters((long)_l1.Length * sizeof(ulong)));
    }

    public ImageWriteCounts Counts { get; private set; }

    /// <summary>Creates the file (it must not exist; mode 0600) for an image of <paramref name="virtualSize"/> bytes.</summary>
    public static Qcow2FileWriter Create(string path, long virtualSize) => new(NewImageFile.Create(path), VirtualSize(virtualSize));

    public async Task WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (offset < 0 || offset > _virtualSize - data.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"a write of {data.Length} bytes at {offset} is outside the image's {_virtualSize} bytes");
        }

        if (data.IsEmpty)
        {
            return;
        }

        while (!data.IsEmpty)
        {
            var index = offset >> ClusterBits;
            var within = (int)(offset & (ClusterSize - 1));
            var take = Math.Min(ClusterSize - within, data.Length);
            if (index != _cluster)
            {
                await FlushClusterAsync(cancellationToken);
                if (take == ClusterSize)
                {
                    await WriteClusterAsync(index, data[..take], cancellationToken);
                    offset += take;
                    data = data[take..];
                    continue;
                }

                await LoadClusterAsync(index, cancellationToken);
            }

            data[..take].CopyTo(_clusterData.AsMemory(within));
            _clusterDirty = true;
            offset += take;
            data = data[take..];
        }
    }

    /// <summary>A new image without a backing file reads as zeros everywhere: nothing to do.</summary>
    public Task ZeroAsync(long offset, long length, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        await FlushClusterAsync(cancellationToken);
        await StoreL2Async(cancellationToken);
        await DrainAsync(cancellationToken);

        var l1 = new byte[Clusters((long)_l1.Length * sizeof(ulong)) * ClusterSize];
        WriteEntries(_l1, l1);
        await RandomAccess.WriteAsync(_handle, l1, ClusterSize, cancellationToken);

        var clusters = _end / ClusterSize;
        var (blocks, tableClusters) = RefcountStructures(clusters);
        var tableOffset = _end;
        var blocksOffset = tableOffset + (tableClusters * ClusterSize);
        var total = clusters + tableClusters + blocks;
        var table = new ulong[tableClusters * L2Entries];
        for (var i = 0; i < blocks; i++)
        {
            table[i] = (ulong)(blocksOffset + (i * ClusterSize));
        }

        var tableBytes = new byte[tableClusters * ClusterSize];
        WriteEntries(table, tableBytes);
        await RandomAccess.WriteAsync(_handle, tableBytes, tableOffset, cancellationToken);
        for (var i = 0L; i < blocks; i++)
        {
            Array.Clear(_table);
            var counted = (int)Math.Min(RefcountsPerBlock, total - (i * RefcountsPerBlock));
            for (var c = 0; c < counted; c++)
            {
                _table[(2 * c) + 1] = 1; // 16-bit big-endian refcount 1
            }

            await RandomAccess.WriteAsync(_handle, _table, blocksOffset + (i * ClusterSize), cancellationToken);
        }

        await RandomAccess.WriteAsync(_handle, Header(_virtualSize, _l1.Length, ClusterSize, tableOffset, (int)tableClusters), 0, cancellationToken);
        _file.Flush(flushToDisk: true);
        Close();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _inFlight;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // Aborting: the file is thrown away with the staging directory.
        }

        Close();
    }

    /// <summary>Writes the cluster being assembled, if it changed.</summary>
    private async Task FlushClusterAsync(CancellationToken cancellationToken)
    {
        if (_cluster >= 0 && _clusterDirty)
        {
            await WriteClusterAsync(_cluster, _clusterData, cancellationToken);
        }

        _cluster = -1;
        _clusterDirty = false;
    }

    /// <summary>Writes a whole guest cluster: in place when it is allocated, appended when not, skipped when all zeros and not allocated.</summary>
    private async Task WriteClusterAsync(long index, ReadOnlyMemory<byte> cluster, CancellationToken cancellationToken)
    {
        var host = await HostOfAsync(index, cancellationToken); // also makes its L2 table the current one
        if (host != 0)
        {
            Counts = Counts.Write(cluster.Length);
            await DrainAsync(cancellationToken);
            await RandomAccess.WriteAsync(_handle, cluster, host, cancellationToken);
            return;
        }

        if (!cluster.Span.ContainsAnyExcept((byte)0))
        {
            return;
        }

        Counts = Counts.Write(cluster.Length);
        if (_l2Host == 0)
        {
            _l2Host = Allocate();
            _l1[_l2Index] = (ulong)_l2Host | Copied;
        }

        host = Allocate();
        _l2[index % L2Entries] = (ulong)host | Copied;
        _l2Dirty = true;
        await AppendAsync(host, cluster, cancellationToken);
    }

    private long Allocate()
    {
        var host = _end;
        _end += ClusterSize;
        return host;
    }

    private async Task LoadClusterAsync(long index, CancellationToken cancellationToken)
    {
        var host = await HostOfAsync(index, cancellationToken);
        if (host != 0)
        {
            await DrainAsync(cancellationToken);
            await ReadExactlyAsync(_clusterData, host, cancellationToken);
        }
        else
        {
            Array.Clear(_clusterData);
        }

        (_cluster, _clusterDirty) = (index, false);
    }

    /// <summary>The host offset of guest cluster <paramref name="index"/>, 0 when unallocated; makes its L2 table the current one.</summary>
    private async Task<long> HostOfAsync(long index, CancellationToken cancellationToken)
    {
        var l2Index = index / L2Entries;
        if (l2Index != _l2Index)
        {
            await StoreL2Async(cancellationToken);
            _l2Index = l2Index;
            _l2Host = (long)(_l1[l2Index] & OffsetMask);
            if (_l2Host != 0)
            {
                await DrainAsync(cancellationToken);
                await ReadExactlyAsync(_table, _l2Host, cancellationToken);
                ReadEntries(_table, _l2);
            }
            else
            {
                Array.Clear(_l2);
            }
        }

        return (long)(_l2[index % L2Entries] & OffsetMask);
    }

    private async Task StoreL2Async(CancellationToken cancellationToken)
    {
        if (_l2Dirty)
        {
            WriteEntries(_l2, _table);
            await RandomAccess.WriteAsync(_handle, _table, _l2Host, cancellationToken);
            _l2Dirty = false;
        }
    }

    /// <summary>Adds an appended cluster to the stage; a stage that is full or not contiguous with it goes out first.</summary>
    private async Task AppendAsync(long host, ReadOnlyMemory<byte> cluster, CancellationToken cancellationToken)
    {
        if (_stageLength > 0 && (_stageHost + _stageLength != host || _stageLength + cluster.Length > StageSize))
        {
            await FlushStageAsync(cancellationToken);
        }

        if (_stageLength == 0)
        {
            _stageHost = host;
        }

        cluster.CopyTo(_stage.AsMemory(_stageLength));
        _stageLength += cluster.Length;
    }

    /// <summary>Sends the stage; the previous one must have landed first, as its buffer becomes the next stage.</summary>
    private async Task FlushStageAsync(CancellationToken cancellationToken)
    {
        if (_stageLength == 0)
        {
            return;
        }

        await _inFlight;
        var (buffer, length, host) = (_stage, _stageLength, _stageHost);
        (_stage, _spare, _stageLength) = (_spare, buffer, 0);
        _inFlight = RandomAccess.WriteAsync(_handle, buffer.AsMemory(0, length), host, cancellationToken).AsTask();
    }

    /// <summary>Every appended cluster on disk: before reading or rewriting anything in place.</summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        await FlushStageAsync(cancellationToken);
        await _inFlight;
    }

    private async Task ReadExactlyAsync(byte[] buffer, long offset, CancellationToken cancellationToken)
    {
        for (var done = 0; done < buffer.Length;)
        {
            var read = await RandomAccess.ReadAsync(_handle, buffer.AsMemory(done), offset + done, cancellationToken);
            if (read == 0)
            {
                throw new IOException($"the image ends at {offset + done} inside a cluster it wrote");
            }

            done += read;
        }
    }

    private void Close()
    {
        if (!_closed)
        {
            _closed = true;
            _file.Dispose();
        }
    }
}
