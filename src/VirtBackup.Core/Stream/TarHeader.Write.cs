using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>Writing: the canonical header VirtBackup writes for every member (see <see cref="TarHeader"/>).</summary>
internal static partial class TarHeader
{
    /// <summary>Writes the canonical header for a regular file member into <paramref name="block"/> (512 bytes).</summary>
    public static void Write(Span<byte> block, string name, long size)
    {
        if (block.Length != BlockSize)
        {
            throw new ArgumentException("A tar header is 512 bytes.", nameof(block));
        }

        if (name.Length == 0 || name.Length > NameLength || !IsAscii(name))
        {
            throw new ArgumentException($"Member name '{name}' must be 1..{NameLength} ASCII characters.", nameof(name));
        }

        if (size < 0 || size > MaxSize)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "Member size out of range for a ustar header.");
        }

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

    /// <summary>Writes <paramref name="value"/> as zero-padded octal filling all but the last byte, then NUL.</summary>
    private static void WriteOctal(Span<byte> field, long value)
    {
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        if (value != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "Value does not fit the octal field.");
        }

        field[digits] = 0;
    }

    private static bool IsAscii(string s)
    {
        foreach (var c in s)
        {
            if (c is < (char)0x20 or >= (char)0x7F)
            {
                return false;
            }
        }

        return true;
    }
}
