using System.Collections;

namespace VirtBackup.Core.Stream;

/// <summary>
/// A disk's extents in 16 bytes each (the offset, and the length with the zero flag in its top bit), appended in
/// order. Stored in chunks of 4,096 extents, so a map of millions never copies itself to grow (no doubling peak)
/// and stays out of the large object heap; read only from outside the library.
/// </summary>
public sealed class ExtentList : IReadOnlyList<DiskExtent>
{
    private const int ChunkShift = 12;
    private const int ChunkLength = 1 << ChunkShift;
    private const long ZeroFlag = long.MinValue;

    private readonly List<long[]> _chunks = [];

    public int Count { get; private set; }

    public DiskExtent this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Index {index} is outside the {Count} extents.");
            }

            var chunk = _chunks[index >> ChunkShift];
            var at = (index & (ChunkLength - 1)) * 2;
            var length = chunk[at + 1];
            return new DiskExtent(chunk[at], length & ~ZeroFlag, length < 0);
        }
    }

    /// <summary>The last extent; the list must not be empty.</summary>
    internal DiskExtent Last => this[Count - 1];

    /// <summary>Appends <paramref name="extent"/> (a length from 0 to 2^62); the caller keeps the order.</summary>
    internal void Add(DiskExtent extent)
    {
        if (extent.Length is < 0 or >= 1L << 62)
        {
            throw new ArgumentOutOfRangeException(nameof(extent), $"Extent length {extent.Length} is out of range.");
        }

        var index = Count & (ChunkLength - 1);
        if (index == 0)
        {
            _chunks.Add(new long[ChunkLength * 2]);
        }

        var chunk = _chunks[^1];
        chunk[index * 2] = extent.Offset;
        chunk[index * 2 + 1] = extent.Zero ? extent.Length | ZeroFlag : extent.Length;
        Count++;
    }

    /// <summary>Appends <paramref name="extent"/>, or lengthens the last extent when it ends where this one starts and is of the same kind.</summary>
    internal void AddMerged(DiskExtent extent)
    {
        if (Count > 0 && Last is var last && last.End == extent.Offset && last.Zero == extent.Zero)
        {
            var length = last.Length + extent.Length;
            if (length >= 1L << 62)
            {
                throw new ArgumentOutOfRangeException(nameof(extent), $"Extent length {length} is out of range.");
            }

            _chunks[^1][((Count - 1) & (ChunkLength - 1)) * 2 + 1] = last.Zero ? length | ZeroFlag : length;
            return;
        }

        Add(extent);
    }

    public IEnumerator<DiskExtent> GetEnumerator()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
