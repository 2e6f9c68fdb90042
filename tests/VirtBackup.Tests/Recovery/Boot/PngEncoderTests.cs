using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using VirtBackup.Core.Recovery.Boot;

namespace VirtBackup.Tests.Recovery.Boot;

public sealed class PngEncoderTests
{
    [Fact]
    public void The_crc32_of_iend_is_the_one_every_png_ends_with()
    {
        Assert.Equal(0xAE426082u, PngEncoder.Crc32("IEND"u8));
    }

    [Fact]
    public void A_2x2_ppm_with_a_comment_becomes_a_png_whose_ihdr_and_decompressed_rows_are_exact()
    {
        var ppm = Encoding.ASCII.GetBytes("P6\n# virsh\n2 2\n255\n").Concat(new byte[] { 255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3 }).ToArray();

        var png = PngEncoder.FromPpm(ppm);

        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R', 0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0 }, png[..29]);
        Assert.Equal(PngEncoder.Crc32(png.AsSpan(12, 17)), BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(29)));
        var idatLength = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(33));
        Assert.Equal("IDAT", Encoding.ASCII.GetString(png, 37, 4));
        using var zlib = new ZLibStream(new MemoryStream(png, 41, idatLength), CompressionMode.Decompress);
        var rows = new MemoryStream();
        zlib.CopyTo(rows);
        Assert.Equal(new byte[] { 0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 1, 2, 3 }, rows.ToArray());
        Assert.Equal(new byte[] { 0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82 }, png[^12..]);
    }

    [Fact]
    public void A_ppm_shorter_than_its_size_is_refused()
    {
        var ppm = Encoding.ASCII.GetBytes("P6 4 4 255\n").Concat(new byte[10]).ToArray();

        Assert.Throws<InvalidDataException>(() => PngEncoder.FromPpm(ppm));
    }
}
