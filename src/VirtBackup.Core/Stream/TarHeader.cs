using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>
/// The one place that knows the tar header layout. VirtBackup writes POSIX ustar headers (magic
/// <c>"ustar\0"</c>, version <c>"00"</c>) for regular files only, with fixed metadata, so that a member's
/// header depends on nothing but its name and size: mode 0600, uid/gid 0, uname/gname <c>root</c>,
/// mtime 0 (1970-01-01T00:00:00Z), no link name, no prefix. The reader accepts only headers that are
/// byte-identical to the ones this class produces for the same name and size.
/// </summary>
internal static class TarHeader
{
    public const int BlockSize = 512;

    // Field offsets and lengths (POSIX.1-1988 ustar).
    public const int NameOffset = 0, NameLength = 100;
    public const int ModeOffset = 100, ModeLength = 8;
    public const int UidOffset = 108, UidLength = 8;
    public const int GidOffset = 116, GidLength = 8;
    public const int SizeOffset = 124, SizeLength = 12;
    public const int MtimeOffset = 136, MtimeLength = 12;
    public const int ChecksumOffset = 148, ChecksumLength = 8;
    public const int TypeFlagOffset = 156;
    public const int LinkNameOffset = 157, LinkNameLength = 100;
    public const int MagicOffset = 257, MagicLength = 6;
    public const int VersionOffset = 263, VersionLength = 2;
    public const int UnameOffset = 265, UnameLength = 32;
    public const int GnameOffset = 297, GnameLength = 32;
    public const int DevMajorOffset = 329, DevMajorLength = 8;
    public const int DevMinorOffset = 337, DevMinorLength = 8;
    public const int PrefixOffset = 345, PrefixLength = 155;

    public const byte RegularFileType = (byte)'0';
    public const int FixedMode = 0x180; // 0600
    public const long FixedMtime = 0;
    public const string FixedOwnerName = "root";

    /// <summary>Largest size the 11-digit octal size field holds (8 GiB - 1).</summary>
    public const long MaxSize = 0x1_FFFF_FFFF;

    public static int PaddingFor(long size) => (int)((BlockSize - (size % BlockSize)) % BlockSize);

    /// <summary>Writes the canonical header for a regular file member into <paramref name="block"/> (512 bytes).</summary>
    public static void Write(Span<byte> block, string name, long size)
    {
        if (block.Length != BlockSize)
            throw new ArgumentException("A tar header is 512 bytes.", nameof(block));
        if (name.Length == 0 || name.Length > NameLength || !IsAscii(name))
            throw new ArgumentException($"Member name '{name}' must be 1..{NameLength} ASCII characters.", nameof(name));
        if (size < 0 || size > MaxSize)
            throw new ArgumentOutOfRangeException(nameof(size), size, "Member size out of range for a ustar header.");

        block.Clear();
        Encoding.ASCII.GetBytes(name, block.Slice(NameOffset, NameLength));
        WriteOctal(block.Slice(ModeOffset, ModeLength), FixedMode);
        WriteOctal(block.Slice(UidOffset, UidLength), 0);
        WriteOctal(block.Slice(GidOffset, GidLength), 0);
        WriteOctal(block.Slice(SizeOffset, SizeLength), size);
        WriteOctal(block.Slice(MtimeOffset, MtimeLength), FixedMtime);
        block[TypeFlagOffset] = RegularFileType;
        "ustar\0"u8.CopyTo(block.Slice(MagicOffset, MagicLength));
        "00"u8.CopyTo(block.Slice(VersionOffset, VersionLength));
        Encoding.ASCII.GetBytes(FixedOwnerName, block.Slice(UnameOffset, UnameLength));
        Encoding.ASCII.GetBytes(FixedOwnerName, block.Slice(GnameOffset, GnameLength));
        WriteOctal(block.Slice(DevMajorOffset, DevMajorLength), 0);
        WriteOctal(block.Slice(DevMinorOffset, DevMinorLength), 0);
        // Checksum: 6 octal digits, NUL, space (as GNU tar writes it).
        WriteOctal(block.Slice(ChecksumOffset, ChecksumLength - 1), ComputeChecksum(block));
        block[ChecksumOffset + ChecksumLength - 1] = (byte)' ';
    }

    public static byte[] Create(string name, long size)
    {
        var block = new byte[BlockSize];
        Write(block, name, size);
        return block;
    }

    /// <summary>Unsigned byte sum of the header with the checksum field counted as spaces.</summary>
    public static int ComputeChecksum(ReadOnlySpan<byte> block)
    {
        int sum = 0;
        for (int i = 0; i < BlockSize; i++)
            sum += i is >= ChecksumOffset and < ChecksumOffset + ChecksumLength ? ' ' : block[i];
        return sum;
    }

    public static bool IsZeroBlock(ReadOnlySpan<byte> block) => !block.ContainsAnyExcept((byte)0);

    /// <summary>
    /// Parses the fields of a header the reader needs before it can judge the member: the name as read,
    /// the type flag, and whether the checksum and magic are right. Never throws.
    /// </summary>
    public static RawHeader Inspect(ReadOnlySpan<byte> block)
    {
        var nameField = block.Slice(NameOffset, NameLength);
        string name = ReadString(nameField);
        int nameEnd = nameField.IndexOf((byte)0);
        bool printable = !nameField[..(nameEnd < 0 ? NameLength : nameEnd)].ContainsAnyExceptInRange((byte)0x20, (byte)0x7E);
        byte type = block[TypeFlagOffset];
        Span<byte> expected = stackalloc byte[ChecksumLength - 1];
        WriteOctal(expected, ComputeChecksum(block));
        bool checksumOk = block.Slice(ChecksumOffset, ChecksumLength - 1).SequenceEqual(expected)
                          && block[ChecksumOffset + ChecksumLength - 1] == (byte)' ';
        bool ustar = block.Slice(MagicOffset, MagicLength).SequenceEqual("ustar\0"u8)
                     && block.Slice(VersionOffset, VersionLength).SequenceEqual("00"u8);
        long size = TryReadOctal(block.Slice(SizeOffset, SizeLength), out long s) ? s : -1;
        return new RawHeader(name, printable, type, checksumOk, ustar, size);
    }

    /// <summary>
    /// The name of the first header field that differs from the canonical header for (name, size),
    /// or null when the header is byte-identical to it.
    /// </summary>
    public static string? FirstNonCanonicalField(ReadOnlySpan<byte> block, string name, long size)
    {
        Span<byte> canonical = stackalloc byte[BlockSize];
        Write(canonical, name, size);
        if (block.SequenceEqual(canonical))
            return null;
        (string Field, int Offset, int Length)[] fields =
        [
            ("name", NameOffset, NameLength), ("mode", ModeOffset, ModeLength), ("uid", UidOffset, UidLength),
            ("gid", GidOffset, GidLength), ("size", SizeOffset, SizeLength), ("mtime", MtimeOffset, MtimeLength),
            ("checksum", ChecksumOffset, ChecksumLength), ("typeflag", TypeFlagOffset, 1),
            ("linkname", LinkNameOffset, LinkNameLength), ("magic", MagicOffset, MagicLength),
            ("version", VersionOffset, VersionLength), ("uname", UnameOffset, UnameLength),
            ("gname", GnameOffset, GnameLength), ("devmajor", DevMajorOffset, DevMajorLength),
            ("devminor", DevMinorOffset, DevMinorLength), ("prefix", PrefixOffset, PrefixLength),
        ];
        foreach (var (field, offset, length) in fields)
        {
            if (!block.Slice(offset, length).SequenceEqual(canonical.Slice(offset, length)))
                return field;
        }
        return "padding";
    }

    public static string DescribeType(byte type) => type switch
    {
        (byte)'0' or 0 => "regular file",
        (byte)'1' => "hard link",
        (byte)'2' => "symbolic link",
        (byte)'3' => "character device",
        (byte)'4' => "block device",
        (byte)'5' => "directory",
        (byte)'6' => "fifo",
        (byte)'7' => "contiguous file",
        (byte)'x' => "pax extended header",
        (byte)'g' => "pax global header",
        (byte)'L' => "GNU long name",
        (byte)'K' => "GNU long link name",
        (byte)'S' => "GNU sparse file",
        (byte)'V' => "GNU volume label",
        (byte)'M' => "GNU multi-volume continuation",
        (byte)'D' => "GNU directory dump",
        _ => "unknown entry type",
    };

    /// <summary>Writes <paramref name="value"/> as zero-padded octal filling all but the last byte, then NUL.</summary>
    private static void WriteOctal(Span<byte> field, long value)
    {
        int digits = field.Length - 1;
        for (int i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        if (value != 0)
            throw new ArgumentOutOfRangeException(nameof(value), "Value does not fit the octal field.");
        field[digits] = 0;
    }

    private static bool TryReadOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        int digits = field.Length - 1;
        if (field[digits] != 0)
            return false;
        for (int i = 0; i < digits; i++)
        {
            byte b = field[i];
            if (b is < (byte)'0' or > (byte)'7')
                return false;
            value = (value << 3) | (long)(b - '0');
        }
        return true;
    }

    /// <summary>Field text up to the first NUL, non-printable bytes shown as \xNN so messages stay readable.</summary>
    private static string ReadString(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        if (end < 0) end = field.Length;
        var sb = new StringBuilder(end);
        foreach (byte b in field[..end])
        {
            if (b is >= 0x20 and < 0x7F) sb.Append((char)b);
            else sb.Append($"\\x{b:x2}");
        }
        return sb.ToString();
    }

    private static bool IsAscii(string s)
    {
        foreach (char c in s)
            if (c is < (char)0x20 or >= (char)0x7F) return false;
        return true;
    }

    internal readonly record struct RawHeader(string Name, bool NameIsPrintableAscii, byte TypeFlag, bool ChecksumOk, bool IsUstar, long Size);
}
