using System.Collections;

namespace VirtBackup.Core.Stream;

/// <summary>
/// A disk's extents, appended in order, in 2 to 5 bytes each (2.3 for scattered 4 KiB extents and their gaps). Every
/// extent is two varints: the gap from the previous extent's end (zigzag, so any value round-trips) and the length with
/// two flags in its low bits (zero; aligned: gap and length are whole 512-byte sectors and stored in sectors). A
/// checkpoint every 64 extents (position and the previous end) makes reading by index decode at most 63 extents; a
/// reader going forward decodes each once. Extents and checkpoints are stored in chunks of at most 64 KiB, so a map of
/// millions never copies itself to grow (no doubling peak) and stays out of the large object heap. The last extent
/// stays unencoded until the next one is added, so <see cref="AddMerged"/> can lengthen it. Built by one writer; read
/// by any number of threads once built.
/// </summary>
public sealed class ExtentList : IReadOnlyList<DiskExtent>
{
    private const int CheckpointShift = 6;
    private const int CheckpointEvery = 1 << CheckpointShift;
    private const int FirstChunkBytes = 256;
    private const int MaxChunkBytes = 64 * 1024;
    private const int SectorShift = 9;
    private const long SectorMask = (1 << SectorShift) - 1;
    private const ulong ZeroFlag = 1;
    private const ulong AlignedFlag = 2;

    /// <summary>Longs in a checkpoint block (32 KiB): two per checkpoint.</summary>
    private const int CheckpointBlockShift = 12;

    /// <summary>Longs in the first checkpoint block, which doubles until it is full size.</summary>
    private const int FirstCheckpointBlock = 32;

    /// <summary>Two varints of 64 bits at most.</summary>
    private const int MaxEncodedBytes = 20;

    private static long _lastId;

    /// <summary>The last index read by this thread and where the extent after it starts, for the list of that id.</summary>
    [ThreadStatic]
    private static Cursor _cursor;

    [ThreadStatic]
    private static long _cursorOwner;

    private readonly long _id = Interlocked.Increment(ref _lastId);
    private readonly List<byte[]> _chunks = [];
    private readonly List<int> _chunkFill = [];

    /// <summary>Per checkpoint, in blocks: its chunk and position in it (chunk &lt;&lt; 32 | position), then the previous extent's end.</summary>
    private readonly List<long[]> _checkpoints = [];
    private int _checkpointCount;

    private int _writeAt;
    private int _encoded;
    private long _encodedEnd;
    private DiskExtent _last;

    public int Count { get; private set; }

    public DiskExtent this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Index {index} is outside the {Count} extents.");
            }

            if (_cursorOwner != _id)
            {
                _cursorOwner = _id;
                _cursor = default;
            }

            return Get(index, ref _cursor);
        }
    }

    /// <summary>The last extent; the list must not be empty.</summary>
    internal DiskExtent Last => Count > 0 ? _last : throw new InvalidOperationException("The extent list is empty.");

    /// <summary>Appends <paramref name="extent"/> (a length from 0 to 2^62); the caller keeps the order.</summary>
    internal void Add(DiskExtent extent)
    {
        CheckLength(extent.Length, nameof(extent));
        if (Count > 0)
        {
            Encode(_last);
        }

        _last = extent;
        Count++;
    }

    /// <summary>Appends <paramref name="extent"/>, or lengthens the last extent when it ends where this one starts and is of the same kind.</summary>
    internal void AddMerged(DiskExtent extent)
    {
        if (Count > 0 && _last.End == extent.Offset && _last.Zero == extent.Zero)
        {
            var length = _last.Length + extent.Length;
            CheckLength(length, nameof(extent));
            _last = _last with { Length = length };
            return;
        }

        Add(extent);
    }

    public IEnumerator<DiskExtent> GetEnumerator()
    {
        var cursor = default(Cursor);
        for (var i = 0; i < Count; i++)
        {
            yield return Get(i, ref cursor);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static void CheckLength(long length, string parameter)
    {
        if (length is < 0 or >= 1L << 62)
        {
            throw new ArgumentOutOfRangeException(parameter, $"Extent length {length} is out of range.");
        }
    }

    /// <summary>Extent <paramref name="index"/> (in range), decoded from <paramref name="cursor"/> when that is nearer than its checkpoint.</summary>
    private DiskExtent Get(int index, ref Cursor cursor)
    {
        if (index == _encoded)
        {
            return _last;
        }

        var fromCheckpoint = index & (CheckpointEvery - 1);
        if (cursor.Next > index || index - cursor.Next > fromCheckpoint)
        {
            var checkpoint = index >> CheckpointShift;
            var slot = checkpoint * 2;
            var block = _checkpoints[slot >> CheckpointBlockShift];
            var at = slot & ((1 << CheckpointBlockShift) - 1);
            var position = block[at];
            cursor = new Cursor(checkpoint << CheckpointShift, (int)(position >> 32), (int)position, block[at + 1]);
        }

        DiskExtent extent;
        do
        {
            extent = Decode(ref cursor);
        }
        while (cursor.Next <= index);

        return extent;
    }

    private DiskExtent Decode(ref Cursor cursor)
    {
        var fill = cursor.Chunk < _chunkFill.Count ? _chunkFill[cursor.Chunk] : _writeAt;
        if (cursor.At == fill)
        {
            cursor.Chunk++;
            cursor.At = 0;
        }

        var chunk = _chunks[cursor.Chunk];
        var zigzag = ReadVarint(chunk, ref cursor.At);
        var lengthAndFlags = ReadVarint(chunk, ref cursor.At);
        var gap = (long)(zigzag >> 1) ^ -(long)(zigzag & 1);
        var length = (long)(lengthAndFlags >> 2);
        if ((lengthAndFlags & AlignedFlag) != 0)
        {
            gap = unchecked(gap << SectorShift);
            length <<= SectorShift;
        }

        var offset = unchecked(cursor.PreviousEnd + gap);
        var extent = new DiskExtent(offset, length, (lengthAndFlags & ZeroFlag) != 0);
        cursor.PreviousEnd = unchecked(offset + extent.Length);
        cursor.Next++;
        return extent;
    }

    private void Encode(DiskExtent extent)
    {
        if (_chunks.Count == 0 || _writeAt + MaxEncodedBytes > _chunks[^1].Length)
        {
            if (_chunks.Count > 0)
            {
                _chunkFill.Add(_writeAt);
            }

            _chunks.Add(new byte[_chunks.Count == 0 ? FirstChunkBytes : Math.Min(MaxChunkBytes, _chunks[^1].Length * 2)]);
            _writeAt = 0;
        }

        if ((_encoded & (CheckpointEvery - 1)) == 0)
        {
            AddCheckpoint(((long)(_chunks.Count - 1) << 32) | (uint)_writeAt, _encodedEnd);
        }

        var chunk = _chunks[^1];
        var gap = unchecked(extent.Offset - _encodedEnd);
        var length = extent.Length;
        var flags = extent.Zero ? ZeroFlag : 0;
        if (((gap | length) & SectorMask) == 0)
        {
            gap >>= SectorShift;
            length >>= SectorShift;
            flags |= AlignedFlag;
        }

        WriteVarint(chunk, ref _writeAt, unchecked((ulong)((gap << 1) ^ (gap >> 63))));
        WriteVarint(chunk, ref _writeAt, ((ulong)length << 2) | flags);
        _encodedEnd = unchecked(extent.Offset + extent.Length);
        _encoded++;
    }

    private void AddCheckpoint(long position, long previousEnd)
    {
        var slot = _checkpointCount * 2;
        var at = slot & ((1 << CheckpointBlockShift) - 1);
        if (at == 0)
        {
            _checkpoints.Add(new long[_checkpoints.Count == 0 ? FirstCheckpointBlock : 1 << CheckpointBlockShift]);
        }
        else if (at == _checkpoints[^1].Length)
        {
            // Only the first block grows (doubling up to full size), so a short list stays small.
            var grown = _checkpoints[^1];
            Array.Resize(ref grown, at * 2);
            _checkpoints[^1] = grown;
        }

        var block = _checkpoints[^1];
        block[at] = position;
        block[at + 1] = previousEnd;
        _checkpointCount++;
    }

    private static void WriteVarint(byte[] into, ref int at, ulong value)
    {
        while (value >= 0x80)
        {
            into[at++] = (byte)(value | 0x80);
            value >>= 7;
        }

        into[at++] = (byte)value;
    }

    private static ulong ReadVarint(byte[] from, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = from[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
    }

    /// <summary>Where extent <see cref="Next"/> starts: its chunk, the position in it and the previous extent's end.</summary>
    private struct Cursor(int next, int chunk, int at, long previousEnd)
    {
        public int Next = next;
        public int Chunk = chunk;
        public int At = at;
        public long PreviousEnd = previousEnd;
    }
}
