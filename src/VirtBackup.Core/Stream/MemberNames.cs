using System.Globalization;

namespace VirtBackup.Core.Stream;

/// <summary>What a member is, as told by its (validated) name.</summary>
public enum MemberKind
{
    Manifest,
    DomainXml,
    Nvram,
    TpmFile,
    DiskMap,
    DiskData,
    Trailer,
}

/// <summary>A member name taken apart. <see cref="Path"/> is the NVRAM file name or TPM relative path.</summary>
public readonly record struct ParsedMemberName(
    MemberKind Kind,
    string Name,
    string? Target = null,
    string? Path = null,
    long Offset = 0,
    Compression? DataCompression = null);

/// <summary>
/// All building and parsing of member names. Names are ASCII, at most 100 bytes (they live in the ustar
/// name field alone), '/'-separated segments of <c>[A-Za-z0-9._+-]</c>, never empty, never <c>.</c> or
/// <c>..</c>:
/// <list type="bullet">
/// <item><c>virtbackup/manifest.json</c>, <c>virtbackup/domain.xml</c>, <c>virtbackup/trailer.json</c></item>
/// <item><c>state/nvram/&lt;file name&gt;</c> (one segment)</item>
/// <item><c>state/tpm/&lt;relative path&gt;</c> (one or more segments)</item>
/// <item><c>disks/&lt;target&gt;/extents.json</c> (format version 1), <c>extents.txt</c> (version 2) or, from version 3,
/// <c>extents-&lt;16 lowercase hex digits of the piece's first byte offset&gt;.txt</c> (one per map piece)</item>
/// <item><c>disks/&lt;target&gt;/&lt;16 lowercase hex digits of the byte offset&gt;.zst</c> or <c>.raw</c></item>
/// </list>
/// Disk targets are one segment of <c>[A-Za-z0-9_-]</c> starting with a letter or digit, at most 32 characters.
/// </summary>
public static class MemberNames
{
    public const string Manifest = "virtbackup/manifest.json";
    public const string DomainXml = "virtbackup/domain.xml";
    public const string Trailer = "virtbackup/trailer.json";
    public const string NvramPrefix = "state/nvram/";
    public const string TpmPrefix = "state/tpm/";
    public const string DisksPrefix = "disks/";
    public const string DiskMapFileName = "extents.json";
    /// <summary>The disk map of a version-2 stream (<see cref="DiskMapText"/>).</summary>
    public const string DiskMapTextFileName = "extents.txt";
    /// <summary>A piece of the disk map of a version-3 stream: <c>extents-&lt;offset&gt;.txt</c>.</summary>
    public const string DiskMapPiecePrefix = "extents-";
    public const string DiskMapPieceExtension = ".txt";
    public const string ZstdExtension = ".zst";
    public const string RawExtension = ".raw";

    /// <summary>Longest member name (the ustar name field; prefix is never used).</summary>
    public const int MaxNameLength = TarHeader.NameLength;

    public const int MaxTargetLength = 32;
    private const int OffsetDigits = 16;

    public static string Nvram(string fileName)
    {
        if (InvalidSegment(fileName) is { } why)
        {
            throw new ArgumentException($"NVRAM file name '{fileName}' is not usable: {why}.", nameof(fileName));
        }

        return Checked(NvramPrefix + fileName);
    }

    public static string TpmFile(string relativePath)
    {
        if (InvalidRelativePath(relativePath) is { } why)
        {
            throw new ArgumentException($"TPM state path '{relativePath}' is not usable: {why}.", nameof(relativePath));
        }

        return Checked(TpmPrefix + relativePath);
    }

    /// <summary>The disk map's name in a stream of format version 1 (<c>extents.json</c>).</summary>
    public static string DiskMap(string target) => DiskMap(target, 1);

    /// <summary>The disk map's name in a stream of <paramref name="formatVersion"/> (from version 3: its first piece's).</summary>
    public static string DiskMap(string target, int formatVersion)
    {
        CheckTarget(target);
        return formatVersion >= 3
            ? DiskMapPiece(target, 0)
            : Checked(DisksPrefix + target + "/" + (formatVersion >= 2 ? DiskMapTextFileName : DiskMapFileName));
    }

    /// <summary>The name of the version-3 map piece that starts at byte <paramref name="offset"/> of the disk.</summary>
    public static string DiskMapPiece(string target, long offset)
    {
        CheckTarget(target);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return Checked(DisksPrefix + target + "/" + DiskMapPiecePrefix + offset.ToString("x16", CultureInfo.InvariantCulture) + DiskMapPieceExtension);
    }

    public static string DiskData(string target, long offset, Compression compression)
    {
        CheckTarget(target);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var ext = compression == Compression.Zstd ? ZstdExtension : RawExtension;
        return Checked(DisksPrefix + target + "/" + offset.ToString("x16", CultureInfo.InvariantCulture) + ext);
    }

    public static bool IsValidTarget(string target) => InvalidTarget(target) is null;

    /// <summary>Why <paramref name="target"/> cannot be a disk target in member names, or null when it can.</summary>
    public static string? InvalidTarget(string? target)
    {
        if (string.IsNullOrEmpty(target))
        {
            return "it is empty";
        }

        if (target.Length > MaxTargetLength)
        {
            return $"it is longer than {MaxTargetLength} characters";
        }

        if (!char.IsAsciiLetterOrDigit(target[0]))
        {
            return "it must start with an ASCII letter or digit";
        }

        foreach (var c in target)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                return $"character '{Printable(c)}' is not allowed (only A-Z a-z 0-9 _ -)";
            }
        }

        return null;
    }

    /// <summary>Why <paramref name="segment"/> is not a safe single path segment, or null when it is.</summary>
    public static string? InvalidSegment(string? segment)
    {
        if (string.IsNullOrEmpty(segment))
        {
            return "empty path segment";
        }

        if (segment is "." or "..")
        {
            return $"'{segment}' segment";
        }

        foreach (var c in segment)
        {
            if (c == '/')
            {
                return "it contains '/'";
            }

            if (c == '\\')
            {
                return "it contains a backslash";
            }

            if (c == '\0')
            {
                return "it contains NUL";
            }

            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+'))
            {
                return $"character '{Printable(c)}' is not allowed (only A-Z a-z 0-9 . _ - +)";
            }
        }
        return null;
    }

    /// <summary>Why <paramref name="path"/> is not a safe relative path of one or more segments, or null.</summary>
    public static string? InvalidRelativePath(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return "it is empty";
        }

        if (path[0] == '/')
        {
            return "it is an absolute path";
        }

        foreach (var segment in path.Split('/'))
        {
            if (InvalidSegment(segment) is { } why)
            {
                return why;
            }
        }

        return null;
    }

    /// <summary>
    /// Takes a member name apart, refusing everything that is not exactly one of the forms above
    /// (absolute paths, '..', empty segments, backslashes, NUL, unknown top-level names...).
    /// </summary>
    public static bool TryParse(string name, out ParsedMemberName parsed, out string problem)
    {
        parsed = default;
        problem = Check(name, out var result) ?? "";
        if (problem.Length > 0)
        {
            return false;
        }

        parsed = result;
        return true;
    }

    /// <summary>Like <see cref="TryParse"/> but throws <see cref="StreamFormatException"/> naming the member.</summary>
    public static ParsedMemberName Parse(string name) =>
        TryParse(name, out var parsed, out var problem) ? parsed : throw new StreamFormatException(name, problem);

    private static string? Check(string name, out ParsedMemberName parsed)
    {
        parsed = default;
        if (name.Length == 0)
        {
            return "empty member name";
        }

        if (name.Length > MaxNameLength)
        {
            return $"name longer than {MaxNameLength} bytes";
        }

        if (name[0] == '/')
        {
            return "absolute path";
        }

        if (name.Contains('\0'))
        {
            return "name contains NUL";
        }

        if (name.Contains('\\'))
        {
            return "name contains a backslash";
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment.Length == 0)
            {
                return "name has an empty path segment";
            }

            if (segment is "." or "..")
            {
                return $"name has a '{segment}' segment";
            }
        }
        foreach (var c in name)
        {
            if (c is < (char)0x21 or > (char)0x7E)
            {
                return $"name contains character '{Printable(c)}'";
            }
        }

        switch (name)
        {
            case Manifest: parsed = new(MemberKind.Manifest, name); return null;
            case DomainXml: parsed = new(MemberKind.DomainXml, name); return null;
            case Trailer: parsed = new(MemberKind.Trailer, name); return null;
        }

        if (name.StartsWith(NvramPrefix, StringComparison.Ordinal))
        {
            return CheckStateFile(name, NvramPrefix, MemberKind.Nvram, InvalidSegment, "bad NVRAM file name", out parsed);
        }

        if (name.StartsWith(TpmPrefix, StringComparison.Ordinal))
        {
            return CheckStateFile(name, TpmPrefix, MemberKind.TpmFile, InvalidRelativePath, "bad TPM state path", out parsed);
        }

        if (name.StartsWith(DisksPrefix, StringComparison.Ordinal))
        {
            var parts = name[DisksPrefix.Length..].Split('/');
            if (parts.Length != 2)
            {
                return "disk members are disks/<target>/<file>";
            }

            string target = parts[0], file = parts[1];
            if (InvalidTarget(target) is { } why)
            {
                return $"bad disk target: {why}";
            }

            if (file is DiskMapFileName or DiskMapTextFileName)
            {
                parsed = new(MemberKind.DiskMap, name, Target: target);
                return null;
            }

            if (file.StartsWith(DiskMapPiecePrefix, StringComparison.Ordinal))
            {
                if (file.Length != DiskMapPiecePrefix.Length + OffsetDigits + DiskMapPieceExtension.Length
                    || !file.EndsWith(DiskMapPieceExtension, StringComparison.Ordinal)
                    || ParseOffset(file.AsSpan(DiskMapPiecePrefix.Length, OffsetDigits)) is not { } pieceOffset)
                {
                    return "a map piece is extents-<16 lowercase hex digits>.txt";
                }

                parsed = new(MemberKind.DiskMap, name, Target: target, Offset: pieceOffset);
                return null;
            }
            Compression? compression =
                file.EndsWith(ZstdExtension, StringComparison.Ordinal) ? Compression.Zstd
                : file.EndsWith(RawExtension, StringComparison.Ordinal) ? Compression.None
                : null;
            if (compression is null || file.Length != OffsetDigits + 4)
            {
                return "unknown disk member (expected extents.json, extents.txt, extents-<16 hex digits>.txt or <16 hex digits>.zst/.raw)";
            }

            var hex = file.AsSpan(0, OffsetDigits);
            if (hex.ContainsAnyExcept("0123456789abcdef"))
            {
                return "disk data offset must be 16 lowercase hex digits";
            }

            if (ParseOffset(hex) is not { } offset)
            {
                return "disk data offset out of range";
            }

            parsed = new(MemberKind.DiskData, name, Target: target, Offset: offset, DataCompression: compression);
            return null;
        }
        return "unknown top-level name (expected virtbackup/, state/nvram/, state/tpm/ or disks/)";
    }

    /// <summary>16 lowercase hex digits as a non-negative offset, or null.</summary>
    private static long? ParseOffset(ReadOnlySpan<char> hex) =>
        hex.ContainsAnyExcept("0123456789abcdef") || long.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) is var offset && offset < 0
            ? null
            : offset;

    /// <summary>A state file below <paramref name="prefix"/>: the rest of the name must pass <paramref name="invalid"/>.</summary>
    private static string? CheckStateFile(
        string name, string prefix, MemberKind kind, Func<string, string?> invalid, string problem, out ParsedMemberName parsed)
    {
        parsed = default;
        var path = name[prefix.Length..];
        if (invalid(path) is { } why)
        {
            return $"{problem}: {why}";
        }

        parsed = new(kind, name, Path: path);
        return null;
    }

    private static void CheckTarget(string target)
    {
        if (InvalidTarget(target) is { } why)
        {
            throw new ArgumentException($"Disk target '{target}' is not usable: {why}.", nameof(target));
        }
    }

    private static string Checked(string name)
    {
        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"Member name '{name}' is longer than {MaxNameLength} characters.");
        }

        return name;
    }

    private static string Printable(char c) => c is >= (char)0x21 and <= (char)0x7E ? c.ToString() : $"\\u{(int)c:x4}";
}
