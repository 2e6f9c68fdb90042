using System.Globalization;
using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>What a pax extended header ('x') says about the member after it: only what changes its identity.</summary>
internal readonly record struct PaxOverrides(string? Path, long? Size);

/// <summary>
/// Pax extended header records (POSIX.1-2001): <c>"%d %s=%s\n"</c>, the decimal length counting the whole record.
/// Every record is checked (length digits, bounds, the space, a non-empty key, '=', the newline); <c>path</c> and
/// <c>size</c> are taken (once each), the time and id keys must be numbers, <c>linkpath</c> and GNU sparse keys
/// are refused, everything else (xattrs, comments, vendor keys) is metadata and ignored. A global header ('g')
/// may not set <c>path</c>, <c>size</c> or <c>linkpath</c>: it would change every member after it.
/// </summary>
internal static partial class TarHeader
{
    private const int MaxRecordLengthDigits = 9;

    private static readonly string[] NumericKeys = ["mtime", "atime", "ctime", "uid", "gid"];

    /// <summary>Null when <paramref name="content"/> is well formed, else what is wrong; <paramref name="overrides"/> then holds path and size.</summary>
    public static string? PaxProblem(ReadOnlySpan<byte> content, bool global, out PaxOverrides overrides)
    {
        overrides = default;
        string? path = null;
        long? size = null;
        var at = 0;
        while (at < content.Length)
        {
            var rest = content[at..];
            var space = rest[..Math.Min(rest.Length, MaxRecordLengthDigits + 1)].IndexOf((byte)' ');
            if (space <= 0 || rest[..space].ContainsAnyExceptInRange((byte)'0', (byte)'9')
                || !int.TryParse(rest[..space], NumberStyles.None, CultureInfo.InvariantCulture, out var length))
            {
                return $"pax record at byte {at} does not start with a decimal length and a space";
            }

            if (length > rest.Length || length < space + 4)
            {
                return $"pax record at byte {at} claims {length} bytes; {rest.Length} remain and a record needs at least {space + 4}";
            }

            var record = rest[(space + 1)..length];
            if (record[^1] != (byte)'\n')
            {
                return $"pax record at byte {at} does not end with a newline where its length says";
            }

            record = record[..^1];
            var equals = record.IndexOf((byte)'=');
            if (equals <= 0)
            {
                return $"pax record at byte {at} has no 'key=' part";
            }

            var keyBytes = record[..equals];
            var value = record[(equals + 1)..];
            if (!IsPrintableAscii(keyBytes))
            {
                return $"pax record at byte {at} has a key that is not printable ASCII";
            }

            var key = Encoding.ASCII.GetString(keyBytes);
            if (RecordProblem(key, value, global, ref path, ref size) is { } problem)
            {
                return $"pax record '{key}': {problem}";
            }

            at += length;
        }
        overrides = new PaxOverrides(path, size);
        return null;
    }

    private static string? RecordProblem(string key, ReadOnlySpan<byte> value, bool global, ref string? path, ref long? size)
    {
        if (key is "path" or "size" or "linkpath" && global)
        {
            return "a pax global header may not set it (it would apply to every member)";
        }

        if (key == "linkpath")
        {
            return "links are not allowed";
        }

        if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal))
        {
            return "sparse files are not allowed";
        }

        if (key == "path")
        {
            if (path is not null)
            {
                return "appears twice";
            }

            if (value.IsEmpty || !IsPrintableAscii(value))
            {
                return $"path '{Show(value)}' is empty or contains non-printable or non-ASCII bytes";
            }

            path = Encoding.ASCII.GetString(value);
        }
        else if (key == "size")
        {
            if (size is not null)
            {
                return "appears twice";
            }

            if (value.IsEmpty || value.Length > 18 || value.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            {
                return $"size '{Show(value)}' is not a decimal number";
            }

            size = long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        else if (NumericKeys.Contains(key) && !IsPaxNumber(value))
        {
            return $"'{Show(value)}' is not a number";
        }
        return null;
    }

    /// <summary>A pax number: optional '-', 1 to 20 digits, optionally '.' and 1 to 9 digits (times may have fractions).</summary>
    private static bool IsPaxNumber(ReadOnlySpan<byte> value)
    {
        if (!value.IsEmpty && value[0] == (byte)'-')
        {
            value = value[1..];
        }

        var dot = value.IndexOf((byte)'.');
        var whole = dot < 0 ? value : value[..dot];
        var fraction = dot < 0 ? default : value[(dot + 1)..];
        return whole.Length is >= 1 and <= 20 && !whole.ContainsAnyExceptInRange((byte)'0', (byte)'9')
               && (dot < 0 || (fraction.Length is >= 1 and <= 9 && !fraction.ContainsAnyExceptInRange((byte)'0', (byte)'9')));
    }
}
