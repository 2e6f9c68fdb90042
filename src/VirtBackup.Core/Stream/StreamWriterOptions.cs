namespace VirtBackup.Core.Stream;

/// <summary>
/// How the writer stores disk data. <paramref name="ZstdLevel"/> is ignored (recorded as 0) for
/// <see cref="Compression.None"/>. <paramref name="MemberSize"/>: data members never cross a multiple of it;
/// a multiple of 4096 in 64 KiB..64 MiB.
/// </summary>
public sealed record StreamWriterOptions(Compression Compression, int ZstdLevel, int MemberSize)
{
    /// <summary>zstd level 1: ~750 MB/s per core here at a ratio close to level 3's on disk images.</summary>
    public const int DefaultZstdLevel = 1;
    public const int DefaultZstdMemberSize = 4 * 1024 * 1024;
    public const int DefaultRawMemberSize = 16 * 1024 * 1024;

    /// <summary>How many data members may be compressed and hashed at once (output order is kept).</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    public static StreamWriterOptions Zstd(int level = DefaultZstdLevel, int memberSize = DefaultZstdMemberSize) =>
        new(Compression.Zstd, level, memberSize);

    public static StreamWriterOptions Uncompressed(int memberSize = DefaultRawMemberSize) =>
        new(Compression.None, 0, memberSize);

    /// <summary>zstd, level 1, 4 MiB members.</summary>
    public static StreamWriterOptions Default { get; } = Zstd();
}
