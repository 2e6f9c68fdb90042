using System.Text.Json.Serialization;

namespace VirtBackup.Core.Stream;

/// <summary>Enums are written and read as their names only (no integers).</summary>
internal sealed class StrictEnumConverter<T>() : JsonStringEnumConverter<T>(namingPolicy: null, allowIntegerValues: false)
    where T : struct, Enum;

/// <summary>How a backup relates to the checkpoint chain.</summary>
[JsonConverter(typeof(StrictEnumConverter<BackupLevel>))]
public enum BackupLevel
{
    /// <summary>One-off full copy; creates no checkpoint.</summary>
    [JsonStringEnumMemberName("copy")] Copy,
    /// <summary>Full backup starting a checkpoint chain.</summary>
    [JsonStringEnumMemberName("full")] Full,
    /// <summary>Changes since the parent checkpoint.</summary>
    [JsonStringEnumMemberName("inc")] Inc,
    /// <summary>Changes since the chain's full (its parent checkpoint); the next incremental continues from it.</summary>
    [JsonStringEnumMemberName("diff")] Diff,
}

/// <summary>What the guest file systems were while the backup point was taken.</summary>
[JsonConverter(typeof(StrictEnumConverter<FreezeState>))]
public enum FreezeState
{
    [JsonStringEnumMemberName("frozen")] Frozen,
    [JsonStringEnumMemberName("not-frozen")] NotFrozen,
    [JsonStringEnumMemberName("no-agent")] NoAgent,
    [JsonStringEnumMemberName("off")] Off,
}

/// <summary>How disk data members are stored.</summary>
[JsonConverter(typeof(StrictEnumConverter<Compression>))]
public enum Compression
{
    /// <summary>Each data member is one independent zstd frame with content size and checksum (<c>.zst</c>).</summary>
    [JsonStringEnumMemberName("zstd")] Zstd,
    /// <summary>Each data member holds the raw bytes (<c>.raw</c>).</summary>
    [JsonStringEnumMemberName("none")] None,
}

[JsonConverter(typeof(StrictEnumConverter<DiskFormat>))]
public enum DiskFormat
{
    [JsonStringEnumMemberName("qcow2")] Qcow2,
    [JsonStringEnumMemberName("raw")] Raw,
}

/// <summary>
/// The first member, <c>virtbackup/manifest.json</c>: what this stream is a backup of and how it is laid out.
/// Serialized with camelCase names in declaration order, indented by two spaces, '\n' line ends, plus a final '\n'.
/// </summary>
public sealed record Manifest
{
    /// <summary>The version new streams get (docs/FORMAT.md §8); readers read every version from 1 to <see cref="MaxFormatVersion"/>.</summary>
    public const int CurrentFormatVersion = 4;

    /// <summary>The newest version this build reads (and writes when asked to).</summary>
    public const int MaxFormatVersion = 4;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required string ToolVersion { get; init; }
    public required string DomainName { get; init; }
    /// <summary>libvirt domain UUID, lowercase 8-4-4-4-12 form.</summary>
    public required string DomainUuid { get; init; }
    public required BackupLevel Level { get; init; }
    /// <summary>Checkpoint created by this backup (full, inc, diff); null for copy.</summary>
    public string? Checkpoint { get; init; }
    /// <summary>Checkpoint the changes are relative to (inc: the chain's previous one; diff: the chain's full).</summary>
    public string? ParentCheckpoint { get; init; }
    /// <summary>Identifies the chain a full starts and its increments continue (full, inc, diff); null for copy.</summary>
    public string? ChainId { get; init; }
    /// <summary>The name of the chain (<c>backup --chain NAME</c>); absent (null) for the unnamed chain.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Chain { get; init; }
    /// <summary>When the backup point was taken, UTC (serialized ISO-8601 ending in Z).</summary>
    public required DateTime CreatedUtc { get; init; }
    /// <summary>How long the guest was paused (or frozen) to take the backup point, in milliseconds.</summary>
    public long PauseWindowMs { get; init; }
    public required FreezeState Freeze { get; init; }
    /// <summary>Must equal the writer's options (the writer checks).</summary>
    public required CompressionInfo Compression { get; init; }
    /// <summary>All disks of the domain in backup order; excluded ones carry no map and no data.</summary>
    public required IReadOnlyList<ManifestDisk> Disks { get; init; }
    public required TpmInfo Tpm { get; init; }
    /// <summary>True when the stream carries exactly one <c>state/nvram/&lt;file&gt;</c> member.</summary>
    public required bool NvramPresent { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>Compression of the data members. <see cref="Level"/> is the zstd level, 0 for none.</summary>
public sealed record CompressionInfo(Compression Algorithm, int Level, int MemberSize)
{
    public static CompressionInfo From(StreamWriterOptions options) =>
        new(options.Compression, options.Compression == Stream.Compression.Zstd ? options.ZstdLevel : 0, options.MemberSize);
}

/// <summary>A disk of the domain. <see cref="SourcePath"/> is informational only (restore never trusts it).</summary>
public sealed record ManifestDisk(
    string Target,
    DiskFormat Format,
    long VirtualSize,
    bool Excluded,
    string? SourcePath);

/// <summary>
/// The emulated TPM. When <see cref="Present"/>, the stream carries the swtpm state directory's files as
/// <c>state/tpm/&lt;relative path&gt;</c> members (at least one). <see cref="Version"/> is "1.2" or "2.0".
/// <see cref="EncryptionSecretUuid"/> names the libvirt secret that encrypts the state, or null.
/// </summary>
public sealed record TpmInfo(bool Present, string? Version, string? EncryptionSecretUuid)
{
    public static TpmInfo None { get; } = new(false, null, null);
}

/// <summary>
/// A byte range of a disk. <see cref="Zero"/> ranges read as zeros and carry no data members; the others
/// are stored in data members.
/// </summary>
public readonly record struct DiskExtent(long Offset, long Length, bool Zero)
{
    [JsonIgnore]
    public long End => Offset + Length;
}

/// <summary>
/// <c>disks/&lt;target&gt;/extents.json</c>: the disk's data and zero ranges, sorted, non-overlapping, adjacent
/// ranges of the same kind merged. Ranges not listed are unchanged (inc) or unallocated (copy, full).
/// </summary>
public sealed record DiskMap(string Target, long VirtualSize, IReadOnlyList<DiskExtent> Extents);

/// <summary>
/// One member as the trailer records it. <see cref="StoredSha256"/> is set for compressed members only;
/// <see cref="Sha256"/>, the content's, for every member except the zstd data members of version 4 and later, whose
/// content is proven by <see cref="StoredSha256"/> and the frame's own checksum (<see cref="StreamRules.HashesContent"/>).
/// </summary>
public sealed record TrailerEntry(
    string Name,
    long StoredSize,
    long Size,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Sha256 = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? StoredSha256 = null);

/// <summary>
/// The last member, <c>virtbackup/trailer.json</c>: proof that the stream is complete. Lists every other
/// member in stream order and ties them to the manifest (its SHA-256, the domain UUID, chain id and checkpoint).
/// </summary>
public sealed record Trailer(
    int FormatVersion,
    string DomainUuid,
    string? ChainId,
    string? Checkpoint,
    string ManifestSha256,
    int MemberCount,
    long TotalStoredBytes,
    long TotalBytes,
    IReadOnlyList<TrailerEntry> Members)
{
    internal static Trailer Create(Manifest manifest, string manifestSha256, IReadOnlyList<TrailerEntry> members)
    {
        long stored = 0, total = 0;
        foreach (var m in members)
        {
            stored += m.StoredSize;
            total += m.Size;
        }
        return new Trailer(manifest.FormatVersion, manifest.DomainUuid, manifest.ChainId, manifest.Checkpoint,
            manifestSha256, members.Count, stored, total, members);
    }
}
