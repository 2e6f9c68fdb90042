namespace VirtBackup.Core.Stream;

/// <summary>
/// The format's rules, shared by the writer (which refuses to produce anything else) and the reader
/// (which refuses to accept anything else).
/// </summary>
internal static class StreamRules
{
    public const int MinMemberSize = 64 * 1024;
    public const int MaxMemberSize = 64 * 1024 * 1024;
    public const int MemberSizeAlignment = 4096;
    public const int MinZstdLevel = 1;
    public const int MaxZstdLevel = 22;
    public const int MaxStateFileSize = 16 * 1024 * 1024;
    public const int MaxTpmFiles = 256;
    public const int MaxManifestSize = 4 * 1024 * 1024;
    public const int MaxDomainXmlSize = 4 * 1024 * 1024;
    public const int MaxMapSize = 64 * 1024 * 1024;
    public const long MaxVirtualSize = 1L << 50; // 1 PiB

    public static string? MemberSizeProblem(int memberSize)
    {
        if (memberSize < MinMemberSize || memberSize > MaxMemberSize)
        {
            return $"member size {memberSize} is outside {MinMemberSize}..{MaxMemberSize}";
        }

        if (memberSize % MemberSizeAlignment != 0)
        {
            return $"member size {memberSize} is not a multiple of {MemberSizeAlignment}";
        }

        return null;
    }

    public static string? CompressionProblem(CompressionInfo? c)
    {
        if (c is null)
        {
            return "compression is missing";
        }

        switch (c.Algorithm)
        {
            case Compression.Zstd when c.Level is < MinZstdLevel or > MaxZstdLevel:
                return $"zstd level {c.Level} is outside {MinZstdLevel}..{MaxZstdLevel}";
            case Compression.None when c.Level != 0:
                return "compression level must be 0 when compression is none";
            case Compression.Zstd or Compression.None:
                return MemberSizeProblem(c.MemberSize);
            default:
                return $"unknown compression {(int)c.Algorithm}";
        }
    }

    /// <summary>First thing wrong with a manifest, or null.</summary>
    public static string? ManifestProblem(Manifest m)
    {
        if (m.FormatVersion is < 1 or > Manifest.MaxFormatVersion)
        {
            return $"format version {m.FormatVersion} is not supported (this build reads versions 1 to {Manifest.MaxFormatVersion})";
        }

        if (string.IsNullOrWhiteSpace(m.ToolVersion) || m.ToolVersion.Length > 64)
        {
            return "toolVersion must be 1..64 characters";
        }

        if (string.IsNullOrEmpty(m.DomainName) || m.DomainName.Length > 1024)
        {
            return "domainName must be 1..1024 characters";
        }

        if (!IsUuid(m.DomainUuid))
        {
            return $"domainUuid '{m.DomainUuid}' is not a lowercase UUID";
        }

        if (!Enum.IsDefined(m.Level))
        {
            return "unknown level";
        }

        if (!Enum.IsDefined(m.Freeze))
        {
            return "unknown freeze state";
        }

        if (m.Chain is { } chain && ChainName.Problem(chain) is { } badChain)
        {
            return $"chain: {badChain}";
        }

        switch (m.Level)
        {
            case BackupLevel.Copy when m.ParentCheckpoint is not null:
                return "a copy has no parentCheckpoint";
            case BackupLevel.Full when m.ParentCheckpoint is not null:
                return "a full backup has no parentCheckpoint";
            case BackupLevel.Full or BackupLevel.Inc or BackupLevel.Diff when string.IsNullOrEmpty(m.Checkpoint):
                return $"a {LevelName(m.Level)} backup needs a checkpoint";
            case BackupLevel.Full or BackupLevel.Inc or BackupLevel.Diff when string.IsNullOrEmpty(m.ChainId):
                return $"a {LevelName(m.Level)} backup needs a chainId";
            case BackupLevel.Inc or BackupLevel.Diff when string.IsNullOrEmpty(m.ParentCheckpoint):
                return $"a{(m.Level == BackupLevel.Inc ? "n" : "")} {LevelName(m.Level)} backup needs a parentCheckpoint";
        }
        if (m.CreatedUtc.Kind != DateTimeKind.Utc)
        {
            return "createdUtc must be a UTC time (ending in Z)";
        }

        if (m.PauseWindowMs < 0)
        {
            return "pauseWindowMs is negative";
        }

        if (CompressionProblem(m.Compression) is { } c)
        {
            return c;
        }

        if (m.Disks is null)
        {
            return "disks is missing";
        }

        var targets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in m.Disks)
        {
            if (d is null)
            {
                return "null disk entry";
            }

            if (MemberNames.InvalidTarget(d.Target) is { } why)
            {
                return $"disk target '{d.Target}': {why}";
            }

            if (!targets.Add(d.Target))
            {
                return $"disk target '{d.Target}' appears twice";
            }

            if (!Enum.IsDefined(d.Format))
            {
                return $"disk '{d.Target}' has an unknown format";
            }

            if (d.VirtualSize < 0 || d.VirtualSize > MaxVirtualSize)
            {
                return $"disk '{d.Target}' virtualSize {d.VirtualSize} is out of range";
            }
        }
        if (m.Tpm is null)
        {
            return "tpm is missing";
        }

        if (m.Tpm.Present)
        {
            if (m.Tpm.Version is not ("1.2" or "2.0"))
            {
                return $"tpm version '{m.Tpm.Version}' is not 1.2 or 2.0";
            }

            if (m.Tpm.EncryptionSecretUuid is not null && !IsUuid(m.Tpm.EncryptionSecretUuid))
            {
                return "tpm encryptionSecretUuid is not a lowercase UUID";
            }
        }
        else if (m.Tpm.Version is not null || m.Tpm.EncryptionSecretUuid is not null)
        {
            return "tpm version and encryptionSecretUuid must be null when no TPM is present";
        }
        if (m.Warnings is null)
        {
            return "warnings is missing";
        }

        foreach (var w in m.Warnings)
        {
            if (w is null)
            {
                return "null warning";
            }
        }

        return null;
    }

    public static string LevelName(BackupLevel level) => level switch
    {
        BackupLevel.Copy => "copy",
        BackupLevel.Full => "full",
        BackupLevel.Diff => "diff",
        _ => "inc",
    };

    public static bool IsUuid(string? s) =>
        s is { Length: 36 } && Guid.TryParseExact(s, "D", out var g) && g.ToString("D") == s;

    /// <summary>
    /// Checks extents against a disk of <paramref name="virtualSize"/> bytes and merges adjacent extents of the
    /// same kind. Returns the canonical list (<paramref name="extents"/> itself when it is an <see cref="ExtentList"/>
    /// that is canonical already: no copy), or null with <paramref name="problem"/> set.
    /// </summary>
    public static ExtentList? Normalize(IReadOnlyList<DiskExtent> extents, long virtualSize, out string problem)
    {
        if (Problem(extents, virtualSize, out var mergeable) is { } found)
        {
            problem = found;
            return null;
        }

        problem = "";
        if (!mergeable && extents is ExtentList canonical)
        {
            return canonical;
        }

        var result = new ExtentList();
        foreach (var e in extents)
        {
            result.AddMerged(e);
        }

        return result;
    }

    /// <summary>Null when <paramref name="extents"/> is already canonical for the disk, else what is wrong.</summary>
    public static string? CanonicalMapProblem(IReadOnlyList<DiskExtent> extents, long virtualSize) =>
        Problem(extents, virtualSize, out var mergeable) ?? (mergeable ? "adjacent extents of the same kind are not merged" : null);

    /// <summary>What is wrong with the extents (null: nothing), and whether two adjacent ones of the same kind could merge.</summary>
    private static string? Problem(IReadOnlyList<DiskExtent> extents, long virtualSize, out bool mergeable)
    {
        mergeable = false;
        long previousEnd = 0;
        bool? previousZero = null;
        for (var i = 0; i < extents.Count; i++)
        {
            var e = extents[i];
            if (e.Length <= 0) { return $"extent at {e.Offset} has length {e.Length}"; }
            if (e.Offset < previousEnd) { return $"extent at {e.Offset} is out of order or overlaps the previous one (ending at {previousEnd})"; }
            if (e.Offset > virtualSize || e.Length > virtualSize - e.Offset) { return $"extent [{e.Offset}, +{e.Length}) goes past the virtual size {virtualSize}"; }
            mergeable |= e.Offset == previousEnd && previousZero == e.Zero;
            previousEnd = e.End;
            previousZero = e.Zero;
        }

        return null;
    }

    /// <summary>
    /// The data members a map implies, in order (the whole layout rule; writer and reader both follow it).
    /// Version 1: every data extent cut at each multiple of <paramref name="memberSize"/>, one member per piece.
    /// Version 2: the same pieces (also cut at each multiple of <see cref="WindowSize"/>), packed: in disk order, each
    /// piece joins the member before it when both lie in the same window and their content fits the member size,
    /// else starts a new member. A whole aligned piece of member size is always a member of its own, as in version 1.
    /// </summary>
    public static IEnumerable<MemberPlan> Members(IEnumerable<DiskExtent> extents, int memberSize, int formatVersion) =>
        formatVersion >= 2 ? PackedMembers(extents, memberSize) : PieceMembers(extents, memberSize);

    /// <summary>
    /// Whether a data member's trailer entry carries the SHA-256 of its content. Every member does up to version 3;
    /// from version 4 a zstd member does not: its <c>storedSha256</c> proves the frame, and the frame's XXH64 checksum,
    /// checked by every decode, proves the content, so a second SHA-256 over the content only cost CPU on both sides.
    /// </summary>
    public static bool HashesContent(int formatVersion, Compression compression) =>
        formatVersion < 4 || compression != Compression.Zstd;

    /// <summary>Address-space window of a version-2 data member: a member never holds bytes of two windows.</summary>
    public const long WindowSize = 256L * 1024 * 1024;

    /// <summary>
    /// Address space one version-3 map piece covers: 64 data windows (16 GiB), so a piece boundary is a window boundary
    /// and cutting the map into pieces changes no data member. A 1 TiB disk has 64 pieces.
    /// </summary>
    public const long MapPieceSize = 64 * WindowSize;

    /// <summary>How many map members a disk has: one per <see cref="MapPieceSize"/> of it from version 3 (at least one), else one.</summary>
    public static int MapPieceCount(long virtualSize, int formatVersion) =>
        formatVersion >= 3 ? (int)Math.Max(1, (virtualSize + MapPieceSize - 1) / MapPieceSize) : 1;

    /// <summary>The address range map piece <paramref name="index"/> covers: its extents lie inside it.</summary>
    public static (long Offset, long End) MapPieceRange(long virtualSize, int index, int formatVersion) =>
        formatVersion >= 3 ? (index * MapPieceSize, Math.Min(virtualSize, (index + 1) * MapPieceSize)) : (0, virtualSize);

    /// <summary>Null when every extent lies inside [<paramref name="start"/>, <paramref name="end"/>), else what is wrong.</summary>
    public static string? PieceRangeProblem(IReadOnlyList<DiskExtent> extents, long start, long end)
    {
        if (extents.Count == 0)
        {
            return null;
        }

        return extents[0].Offset < start || extents[^1].End > end
            ? $"an extent lies outside the piece's range [{start}, {end})"
            : null;
    }

    /// <summary>
    /// The part of the canonical <paramref name="extents"/> inside [<paramref name="start"/>, <paramref name="end"/>),
    /// from index <paramref name="next"/> on (advanced past the extents that end inside the range): extents that cross
    /// an end are cut there.
    /// </summary>
    public static ExtentList Slice(IReadOnlyList<DiskExtent> extents, long start, long end, ref int next)
    {
        var piece = new ExtentList();
        while (next < extents.Count && extents[next].Offset < end)
        {
            var e = extents[next];
            var from = Math.Max(e.Offset, start);
            var to = Math.Min(e.End, end);
            if (to > from)
            {
                piece.AddMerged(new DiskExtent(from, to - from, e.Zero));
            }

            if (e.End > end)
            {
                break;
            }

            next++;
        }

        return piece;
    }

    private static IEnumerable<MemberPlan> PieceMembers(IEnumerable<DiskExtent> extents, int memberSize)
    {
        foreach (var e in extents)
        {
            if (e.Zero)
            {
                continue;
            }

            var pos = e.Offset;
            while (pos < e.End)
            {
                var boundary = (pos / memberSize + 1) * memberSize;
                var end = Math.Min(boundary, e.End);
                yield return new MemberPlan(pos, (int)(end - pos), [new DataSegment(pos, (int)(end - pos), 0)]);
                pos = end;
            }
        }
    }

    private static IEnumerable<MemberPlan> PackedMembers(IEnumerable<DiskExtent> extents, int memberSize)
    {
        List<DataSegment>? segments = null;
        long window = -1;
        var filled = 0;
        foreach (var e in extents)
        {
            if (e.Zero)
            {
                continue;
            }

            var pos = e.Offset;
            while (pos < e.End)
            {
                var w = pos / WindowSize;
                var end = Math.Min(e.End, Math.Min((pos / memberSize + 1) * memberSize, (w + 1) * WindowSize));
                var length = (int)(end - pos);
                if (segments is not null && (w != window || filled + length > memberSize))
                {
                    yield return new MemberPlan(segments[0].DiskOffset, filled, segments);
                    segments = null;
                }

                window = w;
                if (segments is null)
                {
                    segments = [];
                    filled = 0;
                }

                segments.Add(new DataSegment(pos, length, filled));
                filled += length;
                pos = end;
            }
        }

        if (segments is not null)
        {
            yield return new MemberPlan(segments[0].DiskOffset, filled, segments);
        }
    }
}

/// <summary><see cref="Length"/> bytes of the disk at <see cref="DiskOffset"/>, stored at <see cref="ContentOffset"/> of a member's content.</summary>
public readonly record struct DataSegment(long DiskOffset, int Length, int ContentOffset)
{
    public long DiskEnd => DiskOffset + Length;
}

/// <summary>
/// One data member as the layout rule implies it: named by <see cref="Offset"/> (the disk offset of its first byte),
/// <see cref="Length"/> bytes of content made of <see cref="Segments"/> in disk order, packed without gaps.
/// </summary>
public sealed record MemberPlan(long Offset, int Length, IReadOnlyList<DataSegment> Segments);
