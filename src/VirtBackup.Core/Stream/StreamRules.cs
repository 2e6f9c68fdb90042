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
        if (m.FormatVersion != Manifest.CurrentFormatVersion)
        {
            return $"format version {m.FormatVersion} is not supported (this build reads version {Manifest.CurrentFormatVersion})";
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
    /// same kind. Returns the canonical list, or null with <paramref name="problem"/> set.
    /// </summary>
    public static List<DiskExtent>? Normalize(IReadOnlyList<DiskExtent> extents, long virtualSize, out string problem)
    {
        problem = "";
        var result = new List<DiskExtent>(extents.Count);
        long previousEnd = 0;
        foreach (var e in extents)
        {
            if (e.Length <= 0) { problem = $"extent at {e.Offset} has length {e.Length}"; return null; }
            if (e.Offset < previousEnd) { problem = $"extent at {e.Offset} is out of order or overlaps the previous one (ending at {previousEnd})"; return null; }
            if (e.Offset > virtualSize || e.Length > virtualSize - e.Offset) { problem = $"extent [{e.Offset}, +{e.Length}) goes past the virtual size {virtualSize}"; return null; }
            if (result.Count > 0 && result[^1].End == e.Offset && result[^1].Zero == e.Zero)
            {
                result[^1] = result[^1] with { Length = result[^1].Length + e.Length };
            }
            else
            {
                result.Add(e);
            }

            previousEnd = e.End;
        }
        return result;
    }

    /// <summary>Null when <paramref name="extents"/> is already canonical for the disk, else what is wrong.</summary>
    public static string? CanonicalMapProblem(IReadOnlyList<DiskExtent> extents, long virtualSize)
    {
        var normalized = Normalize(extents, virtualSize, out var problem);
        if (normalized is null)
        {
            return problem;
        }

        if (normalized.Count != extents.Count)
        {
            return "adjacent extents of the same kind are not merged";
        }

        return null;
    }

    /// <summary>
    /// The data members a map implies, in order: every data extent cut at each multiple of
    /// <paramref name="memberSize"/>. This is the whole layout rule; writer and reader both follow it.
    /// </summary>
    public static IEnumerable<(long Offset, int Length, long ExtentEnd)> Pieces(IReadOnlyList<DiskExtent> extents, int memberSize)
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
                yield return (pos, (int)(end - pos), e.End);
                pos = end;
            }
        }
    }
}
