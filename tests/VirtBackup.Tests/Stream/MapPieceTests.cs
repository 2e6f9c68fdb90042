using System.Text;
using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

/// <summary>Format version 3: each disk's map in pieces of 16 GiB of the disk, each piece right before its data.</summary>
public class MapPieceTests
{
    private const long Gi = 1024L * 1024 * 1024;

    /// <summary>Five small extents, one every 8 GiB of a 40 GiB disk (three pieces: 16, 16 and 8 GiB).</summary>
    private static readonly ScatteredDisk FiveExtents = new(5, 8 * Gi, 4096);

    private static async Task<byte[]> StreamOfAsync(ScatteredDisk disk, int formatVersion, IReadOnlyList<DiskExtent>? map = null)
    {
        var output = new MemoryStream();
        await disk.WriteStreamAsync(output, formatVersion, StreamWriterOptions.Default, map ?? disk.Extents().ToList());
        return output.ToArray();
    }

    [Fact(Timeout = 30_000)]
    public async Task Each_map_piece_comes_right_before_the_data_members_of_its_16_GiB_of_the_disk()
    {
        var stream = await StreamOfAsync(FiveExtents, 3);

        Assert.Equal(
            [
                "virtbackup/manifest.json", "virtbackup/domain.xml",
                "disks/vda/extents-0000000000000000.txt", "disks/vda/0000000000000000.zst", "disks/vda/0000000200001000.zst",
                "disks/vda/extents-0000000400000000.txt", "disks/vda/0000000400002000.zst", "disks/vda/0000000600003000.zst",
                "disks/vda/extents-0000000800000000.txt", "disks/vda/0000000800004000.zst",
                "virtbackup/trailer.json",
            ],
            TarSurgery.Records(stream).Select(r => r.Name));
        Assert.Equal(
            "target vda\nvirtualSize 42949672960\nd 17179877376 3072\nd 25769816064 4096\n",
            PieceText(stream, "disks/vda/extents-0000000400000000.txt"));
        Assert.Equal(
            "target vda\nvirtualSize 42949672960\nd 0 1024\nz 1024 4096\nd 8589938688 2048\n",
            PieceText(stream, "disks/vda/extents-0000000000000000.txt"));
    }

    [Fact(Timeout = 30_000)]
    public async Task Cutting_the_map_into_pieces_changes_no_data_member_even_where_an_extent_crosses_a_piece_boundary()
    {
        // 64 KiB extents every 8 GiB - 16 KiB: the third crosses 16 GiB, the fifth 32 GiB.
        var disk = new ScatteredDisk(5, 8 * Gi - 16 * 1024, 64 * 1024, fixedLength: true);
        Assert.True(disk.Data(2).Offset < 16 * Gi && disk.Data(2).End > 16 * Gi);

        var version2 = await StreamOfAsync(disk, 2);
        var version3 = await StreamOfAsync(disk, 3);

        Assert.Equal(DataMembers(version2), DataMembers(version3));
        Assert.Equal(
            [
                "target vda\nvirtualSize 42949591040\nd 0 65536\nz 65536 4096\nd 8589922304 65536\nd 17179844608 24576\n",
                "target vda\nvirtualSize 42949591040\nd 17179869184 40960\nd 25769766912 65536\nd 34359689216 49152\n",
                "target vda\nvirtualSize 42949591040\nd 34359738368 16384\n",
            ],
            new[] { "0000000000000000", "0000000400000000", "0000000800000000" }.Select(o => PieceText(version3, $"disks/vda/extents-{o}.txt")));
        var members = await StreamFixtures.ReadAllAsync(version3);
        Assert.Equal(
            [(0L, true, false), (16 * Gi, false, false), (32 * Gi, false, true)],
            members.OfType<DiskMapMember>().Select(m => (m.PieceOffset, m.IsFirstPiece, m.IsLastPiece)));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_map_given_piece_by_piece_as_the_disk_is_mapped_gives_the_same_stream_as_the_whole_map()
    {
        var whole = await StreamOfAsync(FiveExtents, 3);

        var output = new MemoryStream();
        await using (var writer = await StartAsync(output, FiveExtents))
        {
            var all = FiveExtents.Extents().ToList();
            var next = 0;
            for (var piece = 0; piece < 3; piece++)
            {
                var (start, end) = StreamRules.MapPieceRange(FiveExtents.VirtualSize, piece, 3);
                var extents = StreamRules.Slice(all, start, end, ref next);
                await writer.WriteDiskMapPieceAsync(ScatteredDisk.Target, extents, CancellationToken.None);
                for (var i = 0; i < FiveExtents.Count; i++)
                {
                    if (FiveExtents.Data(i) is var e && e.Offset >= start && e.Offset < end)
                    {
                        var bytes = new byte[e.Length];
                        ScatteredDisk.Fill(e.Offset, bytes);
                        await writer.WriteDiskDataAsync(ScatteredDisk.Target, e.Offset, bytes, CancellationToken.None);
                    }
                }
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        Assert.Equal(whole, output.ToArray());
    }

    [Fact(Timeout = 30_000)]
    public async Task The_writer_refuses_data_before_its_map_piece_and_a_piece_with_extents_outside_its_range()
    {
        await using var writer = await StartAsync(new MemoryStream(), FiveExtents);
        await writer.WriteDiskMapPieceAsync(ScatteredDisk.Target, [new DiskExtent(0, 4096, false)], CancellationToken.None);
        await writer.WriteDiskDataAsync(ScatteredDisk.Target, 0, new byte[4096], CancellationToken.None);

        var early = await Assert.ThrowsAsync<InvalidOperationException>(
            () => writer.WriteDiskDataAsync(ScatteredDisk.Target, 16 * Gi, new byte[4096], CancellationToken.None));
        var outside = await Assert.ThrowsAsync<ArgumentException>(
            () => writer.WriteDiskMapPieceAsync(ScatteredDisk.Target, [new DiskExtent(32 * Gi, 4096, false)], CancellationToken.None));
        var unfinished = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.CompleteAsync(CancellationToken.None));

        Assert.Equal("Disk 'vda' needs its next map piece before more data (got data at offset 17179869184).", early.Message);
        Assert.StartsWith("Invalid map piece 1 of disk 'vda': an extent lies outside the piece's range [17179869184, 34359738368).", outside.Message);
        Assert.Equal("Disk 'vda' still needs map pieces.", unfinished.Message);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_missing_map_piece_is_refused_at_the_data_member_that_needs_it()
    {
        var stream = await StreamOfAsync(FiveExtents, 3);

        var e = await StreamFixtures.RefusedAsync(Without(stream, "disks/vda/extents-0000000400000000.txt"));

        Assert.Equal("disks/vda/0000000400002000.zst", e.Member);
        Assert.Equal(
            "the map piece before this member is missing: 'disks/vda/extents-0000000400000000.txt' must come first, or this member lies outside the map's data extents",
            e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_last_map_piece_missing_before_the_trailer_is_refused()
    {
        // A 24 GiB disk whose data lies in its first piece: the last piece is only its map member, after the first's data.
        var disk = new ScatteredDisk(2, 12 * Gi, 4096);
        var stream = await StreamOfAsync(disk, 3);

        var e = await StreamFixtures.RefusedAsync(Without(stream, "disks/vda/extents-0000000400000000.txt"));

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Equal("disk 'vda' is incomplete: member 'disks/vda/extents-0000000400000000.txt' is missing", e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_map_piece_listing_an_extent_outside_its_range_is_refused()
    {
        var stream = await StreamOfAsync(FiveExtents, 3);

        var e = await StreamFixtures.RefusedAsync(Replaced(stream, "disks/vda/extents-0000000400000000.txt",
            "target vda\nvirtualSize 42949672960\nd 17179877376 3072\nd 34359738368 4096\n"));

        Assert.Equal("disks/vda/extents-0000000400000000.txt", e.Member);
        Assert.Equal("an extent lies outside the piece's range [17179869184, 34359738368)", e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_version_3_stream_with_a_version_2_map_name_is_refused()
    {
        var stream = await StreamOfAsync(FiveExtents, 3);

        var e = await StreamFixtures.RefusedAsync(Renamed(stream, "disks/vda/extents-0000000000000000.txt", "disks/vda/extents.txt"));

        Assert.Equal("disks/vda/extents.txt", e.Member);
        Assert.Equal(
            "map piece 'disks/vda/extents-0000000000000000.txt' is missing (from version 3 a disk map comes in pieces of 17179869184 bytes of the disk, in order)",
            e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_version_2_stream_with_a_map_piece_is_refused()
    {
        var stream = await StreamOfAsync(FiveExtents, 2);

        var e = await StreamFixtures.RefusedAsync(Renamed(stream, "disks/vda/extents.txt", "disks/vda/extents-0000000000000000.txt"));

        Assert.Equal("disks/vda/extents-0000000000000000.txt", e.Member);
        Assert.Equal("a version-2 stream has its disk maps in 'disks/vda/extents.txt'", e.Problem);
    }

    private static async Task<BackupStreamWriter> StartAsync(System.IO.Stream output, ScatteredDisk disk)
    {
        var options = StreamWriterOptions.Default;
        var manifest = StreamFixtures.Manifest(options, [], level: BackupLevel.Copy, tpm: false, nvram: false, formatVersion: 3) with
        {
            Disks = [new ManifestDisk(ScatteredDisk.Target, DiskFormat.Qcow2, disk.VirtualSize, false, null)],
        };
        var writer = new BackupStreamWriter(output, options);
        await writer.WriteManifestAsync(manifest, CancellationToken.None);
        await writer.WriteDomainXmlAsync("<domain/>", CancellationToken.None);
        return writer;
    }

    private static string PieceText(byte[] stream, string name) =>
        Encoding.ASCII.GetString(TarSurgery.Content(stream, TarSurgery.Records(stream).Single(r => r.Name == name)));

    /// <summary>Every data member: its name and its bytes in the stream (header, stored bytes, padding), in hex.</summary>
    private static List<(string Name, string Bytes)> DataMembers(byte[] stream) =>
        TarSurgery.Records(stream).Where(r => r.Name.EndsWith(".zst", StringComparison.Ordinal))
            .Select(r => (r.Name, Convert.ToHexString(TarSurgery.Bytes(stream, r)))).ToList();

    private static byte[] Without(byte[] stream, string name) =>
        TarSurgery.Join(TarSurgery.Records(stream).Where(r => r.Name != name).Select(r => TarSurgery.Bytes(stream, r)));

    private static byte[] Renamed(byte[] stream, string name, string newName) =>
        TarSurgery.Join(TarSurgery.Records(stream).Select(r => r.Name == name
            ? TarSurgery.Member(newName, TarSurgery.Content(stream, r))
            : TarSurgery.Bytes(stream, r)));

    private static byte[] Replaced(byte[] stream, string name, string content) =>
        TarSurgery.Join(TarSurgery.Records(stream).Select(r => r.Name == name
            ? TarSurgery.Member(name, Encoding.ASCII.GetBytes(content))
            : TarSurgery.Bytes(stream, r)));
}
