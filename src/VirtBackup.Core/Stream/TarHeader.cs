namespace VirtBackup.Core.Stream;

/// <summary>
/// The one place that knows the tar header layout (this file: fields and types; <c>TarHeader.Write.cs</c>: the
/// header VirtBackup writes; <c>TarHeader.Read.cs</c>: headers of any flavour the reader accepts;
/// <c>TarHeader.Pax.cs</c>: pax extended header records). VirtBackup writes POSIX ustar headers (magic
/// <c>"ustar\0"</c>, version <c>"00"</c>) for regular files only, with fixed metadata, so that a member's
/// header depends on nothing but its name and size: mode 0600, uid/gid 0, uname/gname <c>root</c>,
/// mtime 0 (1970-01-01T00:00:00Z), no link name, no prefix. The reader also accepts the headers other tar tools
/// write for the same members (GNU and pax flavours, other metadata): the trailer, not the header, proves them.
/// </summary>
internal static partial class TarHeader
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
    public const byte OldRegularFileType = 0;
    public const byte PaxExtendedType = (byte)'x';
    public const byte PaxGlobalType = (byte)'g';
    public const byte GnuLongNameType = (byte)'L';
    public const int FixedMode = 0x180; // 0600
    public const long FixedMtime = 0;
    public const string FixedOwnerName = "root";

    /// <summary>Largest size the 11-digit octal size field holds (8 GiB - 1).</summary>
    public const long MaxSize = 0x1_FFFF_FFFF;

    public static int PaddingFor(long size) => (int)((BlockSize - (size % BlockSize)) % BlockSize);

    /// <summary>Unsigned byte sum of the header with the checksum field counted as spaces.</summary>
    public static int ComputeChecksum(ReadOnlySpan<byte> block)
    {
        var sum = 0;
        for (var i = 0; i < BlockSize; i++)
        {
            sum += i is >= ChecksumOffset and < ChecksumOffset + ChecksumLength ? ' ' : block[i];
        }

        return sum;
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
}
