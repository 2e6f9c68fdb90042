using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>The header flavour, told by the magic and version fields.</summary>
internal enum TarFlavour
{
    /// <summary>No magic this reader accepts (a v7 header, or not a tar header at all).</summary>
    Unknown,

    /// <summary>POSIX ustar (and pax, which is ustar plus 'x'/'g' entries): <c>"ustar\0"</c> <c>"00"</c>; the prefix field extends the name.</summary>
    Ustar,

    /// <summary>GNU tar's gnu and oldgnu formats, Python's and borg's GNU format: <c>"ustar  \0"</c>; no prefix field (GNU keeps times there).</summary>
    Gnu,
}

/// <summary>
/// Reading: what the reader needs from a header of any accepted flavour. Every value is checked, none is trusted:
/// numbers are octal (leading spaces, then digits, then only NUL or spaces) or GNU base-256, names are shown
/// with non-printable bytes as <c>\xNN</c>, and nothing is allocated from a size read here (the reader caps sizes).
/// </summary>
internal static partial class TarHeader
{
    public static bool IsZeroBlock(ReadOnlySpan<byte> block) => !block.ContainsAnyExcept((byte)0);

    /// <summary>
    /// Parses the fields of a header the reader needs before it can judge the member: the name as read (with the
    /// ustar prefix), the type flag, the flavour, the size, and whether the checksum and the other numeric fields
    /// are well formed. Never throws.
    /// </summary>
    public static RawHeader Inspect(ReadOnlySpan<byte> block)
    {
        var type = block[TypeFlagOffset];
        // The checksum as every tar tool this reader knows writes it: 6 octal digits, NUL, space.
        Span<byte> expected = stackalloc byte[ChecksumLength];
        FormatChecksum(expected[..^2], ComputeChecksum(block));
        expected[^2] = 0;
        expected[^1] = (byte)' ';
        var checksumOk = block.Slice(ChecksumOffset, ChecksumLength).SequenceEqual(expected);
        var flavour = FlavourOf(block);

        var nameField = FieldText(block.Slice(NameOffset, NameLength));
        var prefixField = flavour == TarFlavour.Ustar ? FieldText(block.Slice(PrefixOffset, PrefixLength)) : default;
        var printable = IsPrintableAscii(nameField) && IsPrintableAscii(prefixField);
        var name = prefixField.IsEmpty ? Show(nameField) : Show(prefixField) + "/" + Show(nameField);

        var size = TryReadNumber(block.Slice(SizeOffset, SizeLength), allowEmpty: false, out var s) && s >= 0 ? s : -1;
        string? badField = null;
        foreach (var (field, offset, length) in OtherNumericFields)
        {
            if (!TryReadNumber(block.Slice(offset, length), allowEmpty: true, out _))
            {
                badField = field;
                break;
            }
        }
        var hasLinkName = block[LinkNameOffset] != 0;
        return new RawHeader(name, printable, type, checksumOk, flavour, size, badField, hasLinkName);
    }

    /// <summary>The name a GNU long name ('L') entry holds: its content up to the first NUL, only NULs after it.</summary>
    public static string? LongNameProblem(ReadOnlySpan<byte> content, out string name)
    {
        var end = content.IndexOf((byte)0);
        var text = end < 0 ? content : content[..end];
        name = Show(text);
        if (end >= 0 && content[end..].ContainsAnyExcept((byte)0))
        {
            return "GNU long name has bytes after its terminating NUL";
        }

        if (text.IsEmpty)
        {
            return "GNU long name is empty";
        }

        return IsPrintableAscii(text) ? null : $"GNU long name '{name}' contains non-printable or non-ASCII bytes";
    }

    private static readonly (string Field, int Offset, int Length)[] OtherNumericFields =
    [
        ("mode", ModeOffset, ModeLength), ("uid", UidOffset, UidLength), ("gid", GidOffset, GidLength),
        ("mtime", MtimeOffset, MtimeLength), ("devmajor", DevMajorOffset, DevMajorLength),
        ("devminor", DevMinorOffset, DevMinorLength),
    ];

    private static TarFlavour FlavourOf(ReadOnlySpan<byte> block)
    {
        var magic = block.Slice(MagicOffset, MagicLength + VersionLength);
        if (magic.SequenceEqual("ustar\u000000"u8))
        {
            return TarFlavour.Ustar;
        }

        return magic.SequenceEqual("ustar  \0"u8) ? TarFlavour.Gnu : TarFlavour.Unknown;
    }

    /// <summary>
    /// A numeric field: octal (optional leading spaces, at least one digit, then only NUL or spaces; digits may
    /// fill the field) or GNU base-256 (first byte 0x80 for a positive, 0xFF for a negative number). An all-NUL
    /// field is 0 where <paramref name="allowEmpty"/> (GNU leaves devmajor/devminor of a file empty).
    /// </summary>
    internal static bool TryReadNumber(ReadOnlySpan<byte> field, bool allowEmpty, out long value)
    {
        value = 0;
        if (field[0] is 0x80 or 0xFF)
        {
            var negative = field[0] == 0xFF;
            foreach (var b in field[1..])
            {
                if (value > (long.MaxValue >> 8))
                {
                    return false;
                }

                value = (value << 8) | (long)(negative ? (byte)~b : b);
            }
            if (negative)
            {
                value = -value - 1;
            }

            return true;
        }
        if (!field.ContainsAnyExcept((byte)0))
        {
            return allowEmpty;
        }

        var i = 0;
        while (i < field.Length && field[i] == (byte)' ')
        {
            i++;
        }

        var digits = 0;
        for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++, digits++)
        {
            value = (value << 3) | (long)(field[i] - '0');
        }

        return digits > 0 && !field[i..].ContainsAnyExcept((byte)0, (byte)' ');
    }

    /// <summary>The checksum's digits: zero-padded octal filling <paramref name="digits"/>.</summary>
    private static void FormatChecksum(Span<byte> digits, int checksum)
    {
        for (var i = digits.Length - 1; i >= 0; i--, checksum >>= 3)
        {
            digits[i] = (byte)('0' + (checksum & 7));
        }
    }

    /// <summary>A text field up to its first NUL.</summary>
    private static ReadOnlySpan<byte> FieldText(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return end < 0 ? field : field[..end];
    }

    private static bool IsPrintableAscii(ReadOnlySpan<byte> text) => !text.ContainsAnyExceptInRange((byte)0x20, (byte)0x7E);

    /// <summary>Text with non-printable bytes shown as \xNN so messages stay readable.</summary>
    private static string Show(ReadOnlySpan<byte> text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var b in text)
        {
            if (b is >= 0x20 and < 0x7F)
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append($"\\x{b:x2}");
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// A header as read. <see cref="Size"/> is -1 when the size field is not a number; <see cref="BadNumericField"/>
    /// names the first other numeric field that is not one.
    /// </summary>
    internal readonly record struct RawHeader(
        string Name,
        bool NameIsPrintableAscii,
        byte TypeFlag,
        bool ChecksumOk,
        TarFlavour Flavour,
        long Size,
        string? BadNumericField,
        bool HasLinkName);
}
