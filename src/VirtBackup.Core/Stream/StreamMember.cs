namespace VirtBackup.Core.Stream;

/// <summary>
/// A member the reader has read and checked so far. Nothing is proven about the stream until the
/// enumeration ends without exception (the trailer is checked last): keep restored data provisional until then.
/// </summary>
public abstract record StreamMember(string Name, long StoredSize, long Size);

public sealed record ManifestMember(string Name, long StoredSize, Manifest Manifest, string Sha256)
    : StreamMember(Name, StoredSize, StoredSize);

public sealed record DomainXmlMember(string Name, long StoredSize, string Xml)
    : StreamMember(Name, StoredSize, StoredSize);

/// <summary><see cref="Content"/> is the member's own copy: it stays valid.</summary>
public sealed record NvramMember(string Name, long StoredSize, string FileName, ReadOnlyMemory<byte> Content)
    : StreamMember(Name, StoredSize, StoredSize);

/// <summary><see cref="Content"/> is the member's own copy: it stays valid.</summary>
public sealed record TpmFileMember(string Name, long StoredSize, string RelativePath, ReadOnlyMemory<byte> Content)
    : StreamMember(Name, StoredSize, StoredSize);

/// <summary>
/// A disk's map, or in a version-3 stream one piece of it: the extents of the disk's range from <see cref="PieceOffset"/>
/// (0 for the first piece, which starts the disk) to the next piece. The data members of those extents follow.
/// </summary>
public sealed record DiskMapMember(string Name, long StoredSize, ManifestDisk Disk, DiskMap Map, long PieceOffset = 0, bool IsLastPiece = true)
    : StreamMember(Name, StoredSize, StoredSize)
{
    public bool IsFirstPiece => PieceOffset == 0;
}

/// <summary>
/// <see cref="Length"/> bytes of content of disk <see cref="Target"/>, the first of them at byte <see cref="Offset"/>.
/// <see cref="Segments"/> says where each part of the content goes on the disk: one segment in a version-1 stream,
/// every data extent piece of the member's window in a version-2 one (docs/FORMAT.md §5). <see cref="Data"/> holds
/// the content decoded when the reader decodes data (empty otherwise); it is a reused buffer, valid only until the
/// enumeration moves on, so copy or write it before asking for the next member.
/// </summary>
public sealed record DiskDataMember(string Name, long StoredSize, string Target, long Offset, int Length, ReadOnlyMemory<byte> Data,
    IReadOnlyList<DataSegment>? PackedSegments = null)
    : StreamMember(Name, StoredSize, Length)
{
    /// <summary>Where the content goes: <see cref="PackedSegments"/>, or the one contiguous range at <see cref="Offset"/>.</summary>
    public IReadOnlyList<DataSegment> Segments => PackedSegments ?? [new DataSegment(Offset, Length, 0)];
}

/// <summary>The last member, yielded only after the whole stream has been checked against it.</summary>
public sealed record TrailerMember(string Name, long StoredSize, Trailer Trailer)
    : StreamMember(Name, StoredSize, StoredSize);

/// <summary>What a successful verification proved.</summary>
public sealed record StreamSummary(Manifest Manifest, Trailer Trailer);

/// <summary>
/// Reader settings. <see cref="DecodeData"/> false (for listing) skips decoding zstd frames: structure, sizes,
/// frame headers and the SHA-256 of stored bytes are still checked, the SHA-256 of uncompressed content is not.
/// </summary>
public sealed record ReaderOptions
{
    public bool DecodeData { get; init; } = true;

    /// <summary>Largest member size (from the manifest) accepted; bounds the reader's buffers. Default 64 MiB.</summary>
    public int MaxMemberSize { get; init; } = StreamRules.MaxMemberSize;

    /// <summary>Largest run of zero bytes accepted after the trailer (end-of-archive blocks, record padding). Default 1 MiB.</summary>
    public int MaxTrailingZeroBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// The input may go on after this stream (stdin shared with the next command, streams concatenated with
    /// <c>cat</c>): the stream ends with its two end-of-archive blocks and the reader consumes nothing past it. On a
    /// seekable input it also consumes zero blocks that follow (record padding) and leaves the position at the first
    /// non-zero block, which must be a tar header (the next stream); on a pipe it stops right after the two blocks
    /// and what follows is not read (nor checked). Default false: the stream must be the whole input, and anything
    /// but zero blocks after the trailer is refused.
    /// </summary>
    public bool StopAtEndOfArchive { get; init; }

    /// <summary>
    /// Data members decoded at once, ahead of the one the consumer holds (at most 64 MiB of them). Default: the
    /// processor count plus one, 2 to 8.
    /// </summary>
    public int DecodeAhead { get; init; } = Math.Clamp(Environment.ProcessorCount + 1, 2, 8);

    public static ReaderOptions Default { get; } = new();
    public static ReaderOptions ListOnly { get; } = new() { DecodeData = false };
}
