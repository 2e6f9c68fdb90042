using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// A large synthetic disk of many small scattered extents that exists only as a rule: extent <c>i</c> and the bytes
/// at any offset are computed, never stored, so a test can write and check 100,000+ extents in little memory.
/// Data extent <c>i</c> lies at <c>i * Stride + jitter</c>, <paramref name="maxLength"/> bytes long (or a quarter, half or
/// three quarters of it unless <paramref name="fixedLength"/>); every fifth one is followed by a zero extent.
/// </summary>
internal sealed class ScatteredDisk(int count, long stride, int maxLength, bool fixedLength = false)
{
    public const string Target = "vda";

    public int Count { get; } = count;

    public int MaxLength { get; } = maxLength;

    public long VirtualSize => Count * stride;

    public DiskExtent Data(int i)
    {
        var offset = i * stride + (i % 7) * 4096;
        var length = fixedLength ? MaxLength : MaxLength / 4 * (1 + i % 4);
        return new DiskExtent(offset, length, false);
    }

    /// <summary>Every extent of the map in order: the data extents, each fifth with a zero extent right after it.</summary>
    public IEnumerable<DiskExtent> Extents()
    {
        for (var i = 0; i < Count; i++)
        {
            var data = Data(i);
            yield return data;
            if (i % 5 == 0)
            {
                yield return new DiskExtent(data.End, 4096, true);
            }
        }
    }

    /// <summary>The disk's bytes at <paramref name="offset"/>: each aligned 8-byte word holds its own offset, scrambled.</summary>
    public static void Fill(long offset, Span<byte> into)
    {
        for (var i = 0; i < into.Length; i++)
        {
            var at = offset + i;
            var word = (ulong)(at / 8) * 0x9E3779B97F4A7C15UL;
            into[i] = (byte)(word >> (int)(at % 8 * 8));
        }
    }

    /// <summary>
    /// Writes every data extent; <paramref name="constant"/>: one byte value per extent instead of <see cref="Fill"/>;
    /// <paramref name="halfway"/> is called once half the extents are written.
    /// </summary>
    public async Task WriteDataAsync(BackupStreamWriter writer, bool constant = false, Action? halfway = null)
    {
        var buffer = new byte[MaxLength];
        for (var i = 0; i < Count; i++)
        {
            if (i == Count / 2)
            {
                halfway?.Invoke();
            }

            var e = Data(i);
            var span = buffer.AsMemory(0, (int)e.Length);
            if (constant)
            {
                span.Span.Fill((byte)(1 + i % 251));
            }
            else
            {
                Fill(e.Offset, span.Span);
            }

            await writer.WriteDiskDataAsync(Target, e.Offset, span, CancellationToken.None);
        }
    }

    /// <summary>A copy stream of this disk alone, written to <paramref name="output"/>.</summary>
    public Task WriteStreamAsync(System.IO.Stream output, int formatVersion, StreamWriterOptions options, bool constant = false) =>
        WriteStreamAsync(output, formatVersion, options, Extents().ToList(), constant: constant);

    /// <summary>A copy stream of this disk alone with <paramref name="map"/> (its extents, in any list), written to <paramref name="output"/>.</summary>
    public async Task WriteStreamAsync(System.IO.Stream output, int formatVersion, StreamWriterOptions options,
        IReadOnlyList<DiskExtent> map, Action? halfway = null, bool constant = false)
    {
        var disk = new SyntheticDisk(Target, [], []);
        var manifest = StreamFixtures.Manifest(options, [disk], level: BackupLevel.Copy, tpm: false, nvram: false, formatVersion: formatVersion) with
        {
            Disks = [new ManifestDisk(Target, DiskFormat.Qcow2, VirtualSize, false, null)],
        };
        await using var writer = new BackupStreamWriter(output, options);
        await writer.WriteManifestAsync(manifest, CancellationToken.None);
        await writer.WriteDomainXmlAsync("<domain/>", CancellationToken.None);
        await writer.WriteDiskMapAsync(Target, map, CancellationToken.None);
        await WriteDataAsync(writer, constant, halfway);
        await writer.CompleteAsync(CancellationToken.None);
    }

    /// <summary>
    /// A disk that checks what a restore writes to it: every data extent exactly once, in order, with its bytes, and
    /// nothing else. Call <see cref="Write"/> for each segment of each data member, then <see cref="AssertComplete"/>.
    /// </summary>
    public sealed class Checker(ScatteredDisk disk)
    {
        private readonly byte[] _expected = new byte[disk.MaxLength];
        private int _extent;
        private long _position = disk.Data(0).Offset;

        public long Bytes { get; private set; }

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                Assert.True(_extent < disk.Count, $"data at {offset} after the last extent");
                var e = disk.Data(_extent);
                Assert.Equal(_position, offset);
                var take = (int)Math.Min(data.Length, e.End - offset);
                var expected = _expected.AsSpan(0, take);
                Fill(offset, expected);
                Assert.True(expected.SequenceEqual(data[..take]), $"bytes at {offset} (+{take}) differ");
                Bytes += take;
                data = data[take..];
                offset += take;
                _position = offset;
                if (offset == e.End && ++_extent < disk.Count)
                {
                    _position = disk.Data(_extent).Offset;
                }
            }
        }

        public void AssertComplete() => Assert.Equal(disk.Count, _extent);
    }
}
