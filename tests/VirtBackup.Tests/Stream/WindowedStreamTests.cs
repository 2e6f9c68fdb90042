using System.Text;
using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

/// <summary>Format version 2: the text map and small pieces packed into members inside 256 MiB windows.</summary>
public class WindowedStreamTests
{
    private const long Window = 256L * 1024 * 1024;

    [Fact(Timeout = 30_000)]
    public async Task Members_of_a_version_2_stream_come_in_the_documented_order_with_small_pieces_of_a_window_packed()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: 2);

        var names = (await StreamFixtures.ReadAllAsync(backup.Stream)).Select(m => m.Name).ToList();

        string[] expected =
        [
            .. StreamFixtures.MembersBeforeDisks,
            "disks/vda/extents.txt",
            "disks/vda/0000000000000000.zst", // [0, 64 KiB): a whole block, alone
            "disks/vda/0000000000010000.zst",
            "disks/vda/0000000000020000.zst", // [128 KiB, 150000): 18928 bytes, the next piece does not fit
            "disks/vda/0000000000040064.zst",
            "disks/vda/0000000000050000.zst",
            "disks/vda/0000000000060000.zst",
            "disks/vda/0000000000070000.zst",
            "disks/vda/0000000000080000.zst",
            "disks/vda/0000000000090000.zst", // [589824, 600000) and [1043576, 1 MiB) packed: 15176 bytes
            "disks/vdb/extents.txt",
            "disks/vdb/0000000000010000.zst",
            "virtbackup/trailer.json",
        ];
        Assert.Equal(expected, names);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_packed_member_reports_each_segment_with_its_disk_offset_and_place_in_the_content()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.None, formatVersion: 2);

        var data = (await StreamFixtures.ReadAllAsync(backup.Stream)).OfType<DiskDataMember>().Where(d => d.Target == "vda").ToList();

        Assert.Equal(
            [(0L, 65536), (65536L, 65536), (131072L, 18928), (262244L, 65436), (327680L, 65536), (393216L, 65536),
             (458752L, 65536), (524288L, 65536), (589824L, 15176)],
            data.Select(d => (d.Offset, d.Length)));
        Assert.Equal([new DataSegment(589824, 10176, 0), new DataSegment(1043576, 5000, 10176)], data[^1].Segments);
        Assert.Equal(backup.Disks[0].Image.AsSpan(1043576, 5000).ToArray(), data[^1].Data[10176..].ToArray());
    }

    [Fact(Timeout = 30_000)]
    public async Task The_version_2_map_is_one_text_line_per_extent()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: 2);

        var record = TarSurgery.Records(backup.Stream).Single(r => r.Name == "disks/vda/extents.txt");

        Assert.Equal(
            "target vda\nvirtualSize 1048576\nd 0 150000\nz 150000 112144\nd 262244 337756\nd 1043576 5000\n",
            Encoding.ASCII.GetString(TarSurgery.Content(backup.Stream, record)));
    }

    [Fact]
    public void Pieces_in_two_windows_never_share_a_member_and_a_whole_block_stays_alone()
    {
        const int memberSize = 4 * 1024 * 1024;
        DiskExtent[] extents =
        [
            new(Window - 8192, 4096, false),
            new(Window - 4096, 4096, true),
            new(Window + 4096, 4096, false),
            new(Window + 12288, 4096, false),
            new(Window + memberSize, memberSize, false),
            new(Window + 2L * memberSize, 100, false),
        ];

        var plans = StreamRules.Members(extents, memberSize, 2).ToList();

        Assert.Equal(
            [
                (Window - 8192, 4096, 1),
                (Window + 4096, 8192, 2),
                (Window + memberSize, memberSize, 1),
                (Window + 2L * memberSize, 100, 1),
            ],
            plans.Select(p => (p.Offset, p.Length, p.Segments.Count)));
        Assert.Equal([new DataSegment(Window + 4096, 4096, 0), new DataSegment(Window + 12288, 4096, 4096)], plans[1].Segments);
    }

    [Fact]
    public void A_map_that_is_not_in_canonical_text_form_is_refused_naming_the_line()
    {
        string[] bad =
        [
            "target vda\nvirtualSize 4096\nd 0 4096",
            "target vda\nvirtualSize 4096\nd 00 4096\n",
            "target vda\nvirtualSize 4096\nx 0 4096\n",
            "target vda\nvirtualSize 4096\nd  0 4096\n",
            "virtualSize 4096\n",
        ];

        var problems = bad.Select(text => Assert.Throws<StreamFormatException>(() =>
            DiskMapText.Parse(Encoding.ASCII.GetBytes(text), "disks/vda/extents.txt")).Problem).ToList();

        Assert.Equal(
            [
                "line 3: the map does not end with a newline",
                "line 3: '00' is not a decimal number in canonical form",
                "line 3: an extent line is 'd <offset> <length>' or 'z <offset> <length>'",
                "line 3: '' is not a decimal number in canonical form",
                "line 1: expected 'target <value>'",
            ],
            problems);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_version_2_stream_whose_map_is_named_extents_json_is_refused()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: 2);
        var renamed = TarSurgery.Join(TarSurgery.Records(backup.Stream).Select(r => r.Name == "disks/vdb/extents.txt"
            ? TarSurgery.Member("disks/vdb/extents.json", TarSurgery.Content(backup.Stream, r))
            : TarSurgery.Bytes(backup.Stream, r)));

        var e = await StreamFixtures.RefusedAsync(renamed);

        Assert.Equal("disks/vdb/extents.json", e.Member);
        Assert.Equal("a version-2 stream has its disk maps in 'disks/vdb/extents.txt'", e.Problem);
    }
}
