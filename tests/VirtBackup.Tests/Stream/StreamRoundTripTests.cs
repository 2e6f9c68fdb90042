namespace VirtBackup.Tests.Stream;

public class StreamRoundTripTests
{
    [Theory(Timeout = 30_000)]
    [InlineData(Compression.Zstd, 2)]
    [InlineData(Compression.None, 2)]
    [InlineData(Compression.Zstd, 1)]
    [InlineData(Compression.None, 1)]
    public async Task A_synthetic_backup_reads_back_with_exact_bytes_and_offsets(Compression compression, int formatVersion)
    {
        var backup = await StreamFixtures.BuildAsync(compression, formatVersion: formatVersion);

        var members = await StreamFixtures.ReadAllAsync(backup.Stream);

        var manifest = Assert.IsType<ManifestMember>(members[0]);
        Assert.Equal(StreamJsonText(backup.Manifest), StreamJsonText(manifest.Manifest));
        Assert.Equal(backup.DomainXml, Assert.IsType<DomainXmlMember>(members[1]).Xml);
        var nvram = Assert.IsType<NvramMember>(members[2]);
        Assert.Equal("win11_VARS.fd", nvram.FileName);
        Assert.Equal("state/nvram/win11_VARS.fd", nvram.Name);
        Assert.Equal(backup.Nvram, nvram.Content.ToArray());
        var tpm = members.OfType<TpmFileMember>().ToList();
        Assert.Equal(["tpm2/tpm2-00.permall", "tpm2/tpm2-00.volatilestate"], tpm.Select(t => t.RelativePath));
        Assert.Equal(backup.TpmFiles[0].Content, tpm[0].Content.ToArray());
        Assert.Equal(backup.TpmFiles[1].Content, tpm[1].Content.ToArray());

        foreach (var disk in backup.Disks.Where(d => !d.Excluded))
        {
            var map = members.OfType<DiskMapMember>().Single(m => m.Disk.Target == disk.Target);
            Assert.Equal(disk.Extents, map.Map.Extents);
            var rebuilt = new byte[disk.VirtualSize];
            foreach (var data in members.OfType<DiskDataMember>().Where(d => d.Target == disk.Target))
            {
                foreach (var s in data.Segments)
                {
                    data.Data.Span.Slice(s.ContentOffset, s.Length).CopyTo(rebuilt.AsSpan((int)s.DiskOffset));
                }
            }

            Assert.Equal(disk.Image, rebuilt);
        }
        Assert.DoesNotContain(members, m => m.Name.StartsWith("disks/sdc/", StringComparison.Ordinal));
        var trailer = Assert.IsType<TrailerMember>(members[^1]);
        Assert.Equal(members.Count - 1, trailer.Trailer.MemberCount);
        Assert.Equal(manifest.Sha256, trailer.Trailer.ManifestSha256);
    }

    [Fact(Timeout = 30_000)]
    public async Task Members_of_a_version_1_stream_come_in_the_documented_order_with_data_cut_at_member_size_boundaries()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: 1);

        var names = (await StreamFixtures.ReadAllAsync(backup.Stream)).Select(m => m.Name).ToList();

        string[] expected =
        [
            .. StreamFixtures.MembersBeforeDisks,
            "disks/vda/extents.json",
            "disks/vda/0000000000000000.zst", // [0, 64 KiB)
            "disks/vda/0000000000010000.zst", // [64 KiB, 128 KiB)
            "disks/vda/0000000000020000.zst", // [128 KiB, 150000): extent end
            "disks/vda/0000000000040064.zst", // 262244 = 0x40064 up to 0x50000
            "disks/vda/0000000000050000.zst",
            "disks/vda/0000000000060000.zst",
            "disks/vda/0000000000070000.zst",
            "disks/vda/0000000000080000.zst",
            "disks/vda/0000000000090000.zst", // up to 600000 = 0x927c0
            "disks/vda/00000000000fec78.zst", // 1048576 - 5000
            "disks/vdb/extents.json",
            "disks/vdb/0000000000010000.zst",
            "virtbackup/trailer.json",
        ];
        Assert.Equal(expected, names);
    }

    [Fact(Timeout = 30_000)]
    public async Task Data_members_of_a_version_1_stream_report_offset_and_length_of_each_piece()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.None, formatVersion: 1);

        var data = (await StreamFixtures.ReadAllAsync(backup.Stream)).OfType<DiskDataMember>().Where(d => d.Target == "vda").ToList();

        Assert.Equal(
            [(0L, 65536), (65536L, 65536), (131072L, 18928), (262244L, 65436), (327680L, 65536), (393216L, 65536),
             (458752L, 65536), (524288L, 65536), (589824L, 10176), (1043576L, 5000)],
            data.Select(d => (d.Offset, d.Length)));
        Assert.All(data, d => Assert.Equal(d.Length, d.StoredSize));
    }

    [Fact(Timeout = 30_000)]
    public async Task Listing_without_decoding_checks_the_stream_and_yields_no_data_bytes()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);

        var members = await StreamFixtures.ReadAllAsync(backup.Stream, ReaderOptions.ListOnly);

        var data = members.OfType<DiskDataMember>().ToList();
        Assert.Equal(10, data.Count);
        Assert.All(data, d => Assert.True(d.Data.IsEmpty));
        Assert.All(data, d => Assert.True(d.Length > 0));
        Assert.IsType<TrailerMember>(members[^1]);
    }

    [Fact(Timeout = 30_000)]
    public async Task Listing_without_decoding_still_refuses_a_corrupt_frame()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var record = TarSurgery.Records(backup.Stream).First(r => r.Name.EndsWith(".zst", StringComparison.Ordinal));
        var corrupt = (byte[])backup.Stream.Clone();
        corrupt[record.ContentOffset + record.Size / 2] ^= 0x10;

        var e = await StreamFixtures.RefusedAsync(corrupt, ReaderOptions.ListOnly);

        Assert.Equal(record.Name, e.Member);
    }

    [Fact(Timeout = 30_000)]
    public async Task Verify_returns_the_manifest_and_trailer_of_an_intact_stream()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var reader = new BackupStreamReader(new UnseekableStream(new MemoryStream(backup.Stream)));

        var summary = await reader.VerifyAsync();

        Assert.Equal("4dea22b3-1d52-d8f3-2516-782e98ab3fa0", summary.Manifest.DomainUuid);
        Assert.Equal(17, summary.Trailer.MemberCount);
        Assert.Equal(backup.Stream.Length, reader.Position);
        Assert.Equal(
            backup.Disks.Where(d => !d.Excluded).Sum(d => d.Extents.Where(e => !e.Zero).Sum(e => e.Length)),
            summary.Trailer.Members.Where(m => m.Name.EndsWith(".zst", StringComparison.Ordinal)).Sum(m => m.Size));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_backup_without_tpm_nvram_or_disks_round_trips()
    {
        var options = StreamWriterOptions.Default;
        var manifest = StreamFixtures.Manifest(options, [], level: BackupLevel.Copy, tpm: false, nvram: false);
        var output = new MemoryStream();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            await writer.WriteManifestAsync(manifest, default);
            await writer.WriteDomainXmlAsync("<domain/>", default);
            await writer.CompleteAsync(default);
        }

        var members = await StreamFixtures.ReadAllAsync(output.ToArray());

        Assert.Equal(["virtbackup/manifest.json", "virtbackup/domain.xml", "virtbackup/trailer.json"], members.Select(m => m.Name));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_zstd_member_is_written_with_the_default_level_and_member_size()
    {
        Assert.Equal(1, StreamWriterOptions.Default.ZstdLevel);
        Assert.Equal(4 * 1024 * 1024, StreamWriterOptions.Default.MemberSize);
        Assert.Equal(16 * 1024 * 1024, StreamWriterOptions.Uncompressed().MemberSize);
        var disk = StreamFixtures.Disk("vda", 10L * 1024 * 1024, 3, new DiskExtent(0, 10L * 1024 * 1024, false));
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, memberSize: StreamWriterOptions.DefaultZstdMemberSize, disks: [disk], writeChunk: 1 << 20);

        var data = (await StreamFixtures.ReadAllAsync(backup.Stream)).OfType<DiskDataMember>().ToList();

        Assert.Equal([(0L, 4194304), (4194304L, 4194304), (8388608L, 2097152)], data.Select(d => (d.Offset, d.Length)));
    }

    private static string StreamJsonText(Manifest m) => System.Text.Encoding.UTF8.GetString(StreamJson.Serialize(m));
}
