using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace VirtBackup.Tests.Restore;

/// <summary>
/// The disk of issue 14 as a chain: 64 KiB data extents scattered like 60,000 over 1 TiB (<see cref="Count"/> of them
/// over the same share of the disk), a full whose map covers the whole disk (zero ranges between the extents, as a
/// thin qcow2 reports them), and an incremental that rewrites, zeroes, partly overlaps and adds extents. Each 4 KiB
/// block of data holds its offset and the stream's seed, so a block written in the wrong place or from the wrong
/// stream shows in a comparison. Nothing is kept in memory: streams and the reference image go to files.
/// </summary>
internal sealed class ScatteredChain(int count)
{
    public const string Target = "vda";
    public const int ExtentLength = 64 * 1024;
    public const long Stride = (1L << 40) / 60_000 / 4096 * 4096;
    private const int Block = 4096;
    private const int FullSeed = 1;
    private const int IncSeed = 2;

    public int Count { get; } = count;

    public long VirtualSize => Count * Stride;

    public static DiskExtent Data(int i) => new(i * Stride + i % 7 * Block, ExtentLength, false);

    /// <summary>The full's map: every data extent, and zeros from each one's end to the next one (or the disk's end).</summary>
    public IEnumerable<DiskExtent> FullMap()
    {
        var position = 0L;
        for (var i = 0; i < Count; i++)
        {
            var data = Data(i);
            if (data.Offset > position)
            {
                yield return new DiskExtent(position, data.Offset - position, true);
            }

            yield return data;
            position = data.End;
        }

        yield return new DiskExtent(position, VirtualSize - position, true);
    }

    /// <summary>
    /// The incremental's map, only changed ranges: every tenth extent rewritten, others zeroed or rewritten from their
    /// middle into the zero range after them, new data and new zeros in zero ranges.
    /// </summary>
    public IEnumerable<DiskExtent> IncMap()
    {
        for (var i = 0; i < Count; i++)
        {
            var data = Data(i);
            switch (i % 10)
            {
                case 0:
                    yield return data;
                    break;
                case 3:
                    yield return data with { Zero = true };
                    break;
                case 5:
                    yield return new DiskExtent(data.Offset + ExtentLength / 2, ExtentLength, false);
                    break;
                case 6:
                    yield return new DiskExtent(data.End + (1 << 20), ExtentLength, false);
                    break;
                case 8:
                    yield return new DiskExtent(data.End + (2 << 20), 1 << 20, true);
                    break;
            }
        }
    }

    public Task WriteFullAsync(string path) => WriteStreamAsync(path, BackupLevel.Full, FullMap(), FullSeed);

    public Task WriteIncAsync(string path) => WriteStreamAsync(path, BackupLevel.Inc, IncMap(), IncSeed);

    /// <summary>What the disk holds after the full (and the incremental): a sparse raw image.</summary>
    public async Task WriteReferenceAsync(string path, bool withInc)
    {
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(file, VirtualSize);
        await ApplyAsync(file, FullMap(), FullSeed, zeros: false);
        if (withInc)
        {
            await ApplyAsync(file, IncMap(), IncSeed, zeros: true);
        }
    }

    /// <summary>Each 4 KiB block: its disk offset and the seed in the first bytes, then one byte value (so zstd packs it well).</summary>
    private static void Fill(int seed, long offset, Span<byte> into)
    {
        for (var block = 0; block < into.Length; block += Block)
        {
            var at = offset + block;
            var span = into.Slice(block, Block);
            span.Fill((byte)(at / Block * 31 + seed));
            BinaryPrimitives.WriteInt64LittleEndian(span, at);
            BinaryPrimitives.WriteInt32LittleEndian(span[8..], seed);
        }
    }

    /// <summary>Writes the map's data, and its zeros unless the file is new (<paramref name="zeros"/> false).</summary>
    private static async Task ApplyAsync(SafeFileHandle file, IEnumerable<DiskExtent> map, int seed, bool zeros)
    {
        var buffer = new byte[1 << 20];
        foreach (var e in map.Where(e => zeros || !e.Zero))
        {
            var span = buffer.AsMemory(0, (int)e.Length);
            if (e.Zero)
            {
                span.Span.Clear();
            }
            else
            {
                Fill(seed, e.Offset, span.Span);
            }

            await RandomAccess.WriteAsync(file, span, e.Offset);
        }
    }

    private async Task WriteStreamAsync(string path, BackupLevel level, IEnumerable<DiskExtent> map, int seed)
    {
        var options = StreamWriterOptions.Default;
        var manifest = ChainFixtures.OneDiskManifest("chain-s", level, level == BackupLevel.Full ? 1 : 2, options,
            new ManifestDisk(Target, DiskFormat.Qcow2, VirtualSize, false, $"/srv/vm/{Target}"), FreezeState.NoAgent);
        var cancellationToken = CancellationToken.None;
        await using var output = File.Create(path);
        await using var writer = new BackupStreamWriter(output, options);
        await writer.WriteManifestAsync(manifest, cancellationToken);
        await writer.WriteDomainXmlAsync(DomainXml, cancellationToken);
        var extents = map.ToList();
        await writer.WriteDiskMapAsync(Target, extents, cancellationToken);
        var buffer = new byte[ExtentLength];
        foreach (var e in extents.Where(e => !e.Zero))
        {
            Fill(seed, e.Offset, buffer);
            await writer.WriteDiskDataAsync(Target, e.Offset, buffer, cancellationToken);
        }

        await writer.CompleteAsync(cancellationToken);
    }

    private const string DomainXml = """
        <domain type='qemu'>
          <name>win11</name>
          <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
          <memory unit='KiB'>131072</memory>
          <os><type arch='x86_64' machine='q35'>hvm</type></os>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/srv/vm/vda.qcow2'/>
              <target dev='vda' bus='virtio'/>
            </disk>
          </devices>
        </domain>
        """;
}
