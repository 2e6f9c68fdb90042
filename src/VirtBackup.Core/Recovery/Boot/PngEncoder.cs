using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// Turns the binary PPM (P6, maxval 255) that <c>virsh screenshot</c> writes for QEMU into an 8-bit RGB PNG:
/// signature, IHDR, one zlib IDAT (filter type 0 per row), IEND, each chunk with its CRC-32.
/// </summary>
public static class PngEncoder
{
    private static readonly uint[] CrcTable = BuildCrcTable();

    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static bool IsPng(ReadOnlySpan<byte> data) => data.StartsWith(Signature);

    public static byte[] FromPpm(ReadOnlySpan<byte> ppm)
    {
        var position = 0;
        if (NextToken(ppm, ref position) != "P6")
        {
            throw new InvalidDataException("not a binary PPM (P6)");
        }

        var width = int.Parse(NextToken(ppm, ref position), System.Globalization.CultureInfo.InvariantCulture);
        var height = int.Parse(NextToken(ppm, ref position), System.Globalization.CultureInfo.InvariantCulture);
        if (NextToken(ppm, ref position) != "255")
        {
            throw new InvalidDataException("only PPMs with maxval 255 are supported");
        }

        position++; // the single whitespace byte after maxval
        var pixels = (long)width * height * 3;
        if (width <= 0 || height <= 0 || ppm.Length - position < pixels)
        {
            throw new InvalidDataException($"the PPM's pixel data is shorter than {width}x{height}");
        }

        return Encode(ppm.Slice(position, (int)pixels), width, height);
    }

    /// <summary>An RGB PNG of <paramref name="rgb"/> (rows top to bottom, 3 bytes per pixel).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> rgb, int width, int height)
    {
        using var output = new MemoryStream();
        output.Write(Signature);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type: RGB
        WriteChunk(output, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                for (var row = 0; row < height; row++)
                {
                    zlib.WriteByte(0);
                    zlib.Write(rgb.Slice(row * width * 3, width * 3));
                }
            }

            WriteChunk(output, "IDAT", compressed.ToArray());
        }

        WriteChunk(output, "IEND", []);
        return output.ToArray();
    }

    private static void WriteChunk(System.IO.Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        output.Write(typeBytes);
        output.Write(data);
        var crc = Update(Update(0xFFFFFFFFu, typeBytes), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        output.Write(word);
    }

    /// <summary>CRC-32 (ISO-HDLC, as PNG uses it) of <paramref name="data"/>.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data) => Update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;

    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }

    private static string NextToken(ReadOnlySpan<byte> data, ref int position)
    {
        while (position < data.Length)
        {
            if (data[position] == '#')
            {
                while (position < data.Length && data[position] != '\n')
                {
                    position++;
                }
            }
            else if (data[position] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            {
                position++;
            }
            else
            {
                break;
            }
        }

        var start = position;
        while (position < data.Length && data[position] is not ((byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r'))
        {
            position++;
        }

        if (position - start > 16)
        {
            throw new InvalidDataException("malformed PPM header");
        }

        return Encoding.ASCII.GetString(data[start..position]);
    }
}
