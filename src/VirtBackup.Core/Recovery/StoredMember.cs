using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// One member of a stream file and where it lies: its header at <see cref="HeaderOffset"/>, its stored bytes
/// right after. Sizes and hashes are the trailer's; the header may be of any flavour the stream reader accepts.
/// <see cref="Sha256"/> (of the content) is null only for a zstd data member of version 4 and later, which is
/// checked by <see cref="StoredSha256"/> (of the stored bytes) and its frame's checksum instead.
/// </summary>
internal sealed record StoredMember(string Name, long HeaderOffset, long StoredSize, long Size, string? Sha256, string? StoredSha256 = null)
{
    public long DataOffset => HeaderOffset + TarHeader.BlockSize;
}

/// <summary>
/// A data member of a disk as the server reads it: <see cref="Length"/> bytes of content, placed on the disk by
/// <see cref="Segments"/> (one contiguous range from <see cref="DiskOffset"/> in a version-1 stream), stored in
/// <see cref="Member"/> of <see cref="Source"/>. <see cref="State"/> remembers
/// whether it was checked against the trailer's SHA-256 (once, the first time it is decoded), and
/// <see cref="Fingerprint"/> what its stored bytes were then.
/// </summary>
internal sealed class DataMember(StreamFile source, StoredMember member, IReadOnlyList<DataSegment> segments, int length, Compression compression)
{
    public const int Unchecked = 0, Verified = 1, Corrupt = 2;

    public StreamFile Source { get; } = source;
    public StoredMember Member { get; } = member;
    public IReadOnlyList<DataSegment> Segments { get; } = segments;
    public long DiskOffset => Segments[0].DiskOffset;
    public int Length { get; } = length;
    public Compression Compression { get; } = compression;

    /// <summary><see cref="Unchecked"/>, <see cref="Verified"/> or <see cref="Corrupt"/>.</summary>
    public int State;

    /// <summary>The <see cref="StoredFingerprint"/> of its stored bytes when they were checked (set before <see cref="State"/> says so).</summary>
    public UInt128 Fingerprint;

    /// <summary>Why the member is corrupt, once it is.</summary>
    public string? Problem { get; set; }

    public string Describe => $"member '{Member.Name}' of '{Source.Path}'";
}
