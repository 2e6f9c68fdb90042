using System.Diagnostics;

namespace VirtBackup.Core.Stream;

/// <summary>
/// Data members: read and checked in order on the reading side, then decoded off it (zstd frame check, SHA-256 of
/// the stored bytes, decompression, SHA-256 of the content) on the thread pool, up to <see cref="_decodeAhead"/>
/// members at once, so decoding uses every core and overlaps whatever the consumer does with the members before.
/// Each member in flight has its own buffers (a ring of <see cref="_decodeAhead"/> + 1 slots: one more for the
/// member the consumer holds). A member is yielded once its decoding is done; its trailer entry gets its hashes then.
/// </summary>
public sealed partial class BackupStreamReader
{
    /// <summary>Most bytes of decoded data in flight: bounds the look-ahead for large members.</summary>
    private const int MaxDecodeAheadBytes = 64 * 1024 * 1024;

    private readonly Queue<PendingDecode> _decoding = new();
    private int _decodeAhead = 1;
    private DataSlot[]? _slots;
    private int _nextSlot;

    /// <summary>Look-ahead for the stream's member size: the option, but at most <see cref="MaxDecodeAheadBytes"/> of members.</summary>
    private void SetDecodeAhead(int memberSize) =>
        _decodeAhead = Math.Max(1, Math.Min(_options.DecodeAhead, MaxDecodeAheadBytes / memberSize));

    private async Task<StreamMember> ReadDiskDataAsync(ParsedMemberName parsed, long size, CancellationToken cancellationToken)
    {
        var name = parsed.Name;
        if (_stage != Stage.Disks || _disk is null || _disk.Disk.Target != parsed.Target)
        {
            throw Fail(name, _disk is not null && _names.Contains(MemberNames.DiskMap(parsed.Target!, _manifest!.FormatVersion))
                ? $"data of disk '{parsed.Target}' after the map of disk '{_disk.Disk.Target}' (data must directly follow its own disk's map)"
                : $"disk data before the map of disk '{parsed.Target}' (data must follow its own disk's map)");
        }

        var disk = _disk;
        var compression = _manifest!.Compression;
        if (parsed.DataCompression != compression.Algorithm)
        {
            throw Fail(name, $"extension does not match the manifest's compression '{(compression.Algorithm == Compression.Zstd ? "zstd" : "none")}'");
        }

        if (disk.MembersDone)
        {
            throw Fail(name, disk.IsComplete
                ? $"disk '{parsed.Target}' has no more data in its map: this member lies outside the map's data extents"
                : $"the map piece before this member is missing: '{ExpectedDiskMember(disk)}' must come first, or this member lies outside the map's data extents");
        }

        var piece = disk.Members.Current;
        if (parsed.Offset != piece.Offset)
        {
            if (parsed.Offset < piece.Offset)
            {
                throw Fail(name, $"offsets must strictly increase and cover the map's data extents in order (expected offset {piece.Offset})");
            }

            if (parsed.Offset >= disk.Disk.VirtualSize)
            {
                throw Fail(name, $"offset {parsed.Offset} is beyond the disk's virtual size {disk.Disk.VirtualSize}");
            }

            throw Fail(name, $"unexpected offset: member '{ExpectedDataName(disk)}' is missing, or this offset is outside the map's data extents or not at a member-size boundary");
        }

        var length = piece.Length;
        var zstd = compression.Algorithm == Compression.Zstd;
        if (!zstd && size != length)
        {
            throw Fail(name, $"holds {size} bytes; the map and member size put {length} bytes here");
        }

        var bound = ZstdFrames.CompressBound(length);
        if (zstd && (size > bound || size < 4))
        {
            throw Fail(name, $"stored size {size} is impossible for {length} bytes of content (at most {bound})");
        }

        var slot = NextSlot(compression.MemberSize, zstd);
        var into = zstd ? slot.Stored! : slot.Decoded;
        await ReadExactlyAsync(name, into.AsMemory(0, (int)size), cancellationToken).ConfigureAwait(false);
        await ReadPaddingAsync(name, size, cancellationToken).ConfigureAwait(false);
        var decode = _options.DecodeData;
        var storedSize = (int)size;
        var hashContent = StreamRules.HashesContent(_manifest.FormatVersion, compression.Algorithm);
        var hashes = Task.Run(() => zstd ? DecodeZstd(name, slot, storedSize, length, decode, hashContent) : (Hash(slot.Decoded.AsSpan(0, length)), null));
        var data = decode ? slot.Decoded.AsMemory(0, length) : ReadOnlyMemory<byte>.Empty;
        var member = new DiskDataMember(name, size, parsed.Target!, parsed.Offset, length, data,
            _manifest.FormatVersion >= 2 ? piece.Segments : null);
        _decoding.Enqueue(new PendingDecode(member, _entries.Count, hashes));
        AddEntry(name, size, length, null, null);
        disk.Advance();
        return member;
    }

    /// <summary>
    /// The work done off the reading side for a zstd member: returns the content's SHA-256 (null where the version
    /// records none; "" where it does but the member is not decoded) and the stored bytes' SHA-256. Decoding checks
    /// the frame's content checksum.
    /// </summary>
    private static (string? Sha, string? StoredSha) DecodeZstd(string name, DataSlot slot, int storedSize, int length, bool decode, bool hashContent)
    {
        var frame = slot.Stored.AsSpan(0, storedSize);
        if (ZstdFrames.FrameProblem(frame, length) is { } frameProblem)
        {
            throw Fail(name, frameProblem);
        }

        var storedSha = Hash(frame);
        if (!decode)
        {
            return (hashContent ? "" : null, storedSha);
        }

        var content = slot.Decoded.AsSpan(0, length);
        if (ZstdFrames.Decompress(frame, content) is { } decodeProblem)
        {
            throw Fail(name, decodeProblem);
        }

        return (hashContent ? Hash(content) : null, storedSha);
    }

    /// <summary>The oldest data member read is about to be yielded: waits for its decoding and records its hashes.</summary>
    private async Task FinishOldestDecodeAsync(DiskDataMember member)
    {
        var oldest = _decoding.Dequeue();
        Debug.Assert(ReferenceEquals(oldest.Member, member), "data members are yielded in the order they were read");
        await oldest.FinishAsync(_entries).ConfigureAwait(false);
    }

    /// <summary>Before the trailer is checked: every data member's hashes are known.</summary>
    private async Task FinishAllDecodesAsync()
    {
        foreach (var pending in _decoding)
        {
            await pending.FinishAsync(_entries).ConfigureAwait(false);
        }
    }

    /// <summary>The enumeration ends early (the consumer stopped, or the stream is bad): lets the decodes in flight end.</summary>
    private async Task AbandonDecodesAsync()
    {
        while (_decoding.TryDequeue(out var pending))
        {
            try
            {
                await pending.Hashes.ConfigureAwait(false);
            }
            catch (StreamFormatException)
            {
                // A member nobody will see any more is bad: the enumeration already ended, with its own outcome.
            }
        }
    }

    private DataSlot NextSlot(int memberSize, bool zstd)
    {
        _slots ??= new DataSlot[_decodeAhead + 1];
        var slot = _slots[_nextSlot] ??= new DataSlot(memberSize, zstd ? ZstdFrames.CompressBound(memberSize) : 0);
        _nextSlot = (_nextSlot + 1) % _slots.Length;
        return slot;
    }

    /// <summary>The buffers of one data member in flight: its stored (zstd) bytes and its content.</summary>
    private sealed class DataSlot(int memberSize, int storedSize)
    {
        public byte[] Decoded { get; } = new byte[memberSize];

        public byte[]? Stored { get; } = storedSize > 0 ? new byte[storedSize] : null;
    }

    /// <summary>A data member being decoded; <see cref="FinishAsync"/> fills in its trailer entry once.</summary>
    private sealed class PendingDecode(DiskDataMember member, int entryIndex, Task<(string? Sha, string? StoredSha)> hashes)
    {
        private bool _finished;

        public DiskDataMember Member { get; } = member;

        public Task<(string? Sha, string? StoredSha)> Hashes { get; } = hashes;

        public async Task FinishAsync(List<TrailerEntry> entries)
        {
            if (_finished)
            {
                return;
            }

            var (sha, storedSha) = await Hashes.ConfigureAwait(false);
            entries[entryIndex] = entries[entryIndex] with { Sha256 = sha, StoredSha256 = storedSha };
            _finished = true;
        }
    }
}
