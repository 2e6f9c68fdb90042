using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace VirtBackup.Tests.Stream;

public class StreamReaderRefusalTests
{
    private static Task<SyntheticBackup> ZstdBackup(int formatVersion = Manifest.CurrentFormatVersion) =>
        StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: formatVersion);
    private static Task<SyntheticBackup> RawBackup() => StreamFixtures.BuildAsync(Compression.None);

    private static byte[] Flip(byte[] stream, long at, byte mask = 0x01)
    {
        var copy = (byte[])stream.Clone();
        copy[at] ^= mask;
        return copy;
    }

    /// <summary>Manifest and domain XML of a valid stream, then <paramref name="entry"/>, then the end of archive.</summary>
    private static byte[] AfterPrologue(byte[] valid, byte[] entry)
    {
        var records = TarSurgery.Records(valid);
        return TarSurgery.Join([TarSurgery.Bytes(valid, records[0]), TarSurgery.Bytes(valid, records[1]), entry]);
    }

    private static byte[] DotNetTarEntry(TarEntryType type, string name, Action<UstarTarEntry>? setup = null)
    {
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            var entry = new UstarTarEntry(type, name);
            setup?.Invoke(entry);
            writer.WriteEntry(entry);
        }
        // TarWriter ends the archive with two zero blocks; keep only the entry.
        return ms.ToArray()[..^1024];
    }

    // ---- truncation ---------------------------------------------------------------------------------

    [Fact(Timeout = 10_000)]
    public async Task A_stream_cut_before_the_trailer_is_refused_naming_the_missing_trailer()
    {
        var backup = await ZstdBackup();
        var trailer = TarSurgery.Records(backup.Stream).Single(r => r.Name == MemberNames.Trailer);

        var e = await StreamFixtures.RefusedAsync(backup.Stream[..(int)trailer.HeaderOffset]);

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("missing: the stream ends at byte", e.Message);
        Assert.Contains("after 'disks/vdb/0000000000010000.zst', without a trailer: it is truncated", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stream_without_trailer_but_with_end_of_archive_blocks_is_refused()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(records.SkipLast(1).Select(r => TarSurgery.Bytes(backup.Stream, r))));

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("comes before the trailer: the stream is incomplete", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stream_cut_inside_a_data_member_is_refused_naming_it()
    {
        var backup = await ZstdBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "disks/vda/0000000000050000.zst");

        var e = await StreamFixtures.RefusedAsync(backup.Stream[..(int)(member.ContentOffset + 100)]);

        Assert.Equal("disks/vda/0000000000050000.zst", e.Member);
        Assert.Contains("the stream ends inside this member (100 of", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stream_cut_inside_a_header_is_refused_naming_the_member()
    {
        var backup = await ZstdBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "disks/vda/extents-0000000000000000.txt");

        var e = await StreamFixtures.RefusedAsync(backup.Stream[..(int)(member.HeaderOffset + 300)]);

        Assert.Equal("disks/vda/extents-0000000000000000.txt", e.Member);
        Assert.Contains("the stream ends inside a tar header", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stream_missing_its_end_of_archive_blocks_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(backup.Stream[..^1024]);

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("without the two end-of-archive zero blocks", e.Message);
    }

    // ---- corruption ---------------------------------------------------------------------------------

    [Fact(Timeout = 10_000)]
    public async Task A_flipped_bit_in_raw_data_is_refused_by_the_trailer_hash()
    {
        var backup = await RawBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "disks/vda/0000000000010000.raw");

        var e = await StreamFixtures.RefusedAsync(Flip(backup.Stream, member.ContentOffset + 1234));

        Assert.Equal("disks/vda/0000000000010000.raw", e.Member);
        Assert.Contains("SHA-256 of the content is", e.Message);
        Assert.Contains("the member is corrupt", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_flipped_bit_in_a_zstd_frame_is_refused()
    {
        var backup = await ZstdBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "disks/vda/0000000000010000.zst");

        var e = await StreamFixtures.RefusedAsync(Flip(backup.Stream, member.ContentOffset + member.Size / 2, 0x40));

        Assert.Equal("disks/vda/0000000000010000.zst", e.Member);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_flipped_bit_in_the_zstd_frame_header_unused_bit_is_refused_by_the_stored_hash()
    {
        var backup = await ZstdBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "disks/vda/0000000000010000.zst");

        // Frame header descriptor bit 4 is "unused": zstd itself ignores it.
        var e = await StreamFixtures.RefusedAsync(Flip(backup.Stream, member.ContentOffset + 4, 0x10));

        Assert.Equal("disks/vda/0000000000010000.zst", e.Member);
        Assert.Contains("SHA-256 of the stored bytes is", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_flipped_bit_in_a_header_is_refused_naming_the_member()
    {
        var backup = await ZstdBackup();
        var member = TarSurgery.Records(backup.Stream).First(r => r.Name == "state/tpm/tpm2/tpm2-00.permall");

        var e = await StreamFixtures.RefusedAsync(Flip(backup.Stream, member.HeaderOffset + 108)); // uid field

        Assert.Equal("state/tpm/tpm2/tpm2-00.permall", e.Member);
        Assert.Contains("tar header checksum mismatch", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_header_with_a_valid_checksum_but_a_mode_that_is_not_a_number_is_refused()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);
        var nvram = records.First(r => r.Name == "state/nvram/win11_VARS.fd");
        var header = TarSurgery.Bytes(backup.Stream, nvram);
        header[TarHeader.ModeOffset + 4] = (byte)'9'; // 0000900: not octal; then fix the checksum
        Encoding.ASCII.GetBytes(Convert.ToString(TarHeader.ComputeChecksum(header), 8).PadLeft(6, '0')).CopyTo(header, TarHeader.ChecksumOffset);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(records.Select(r => r == nvram ? header : TarSurgery.Bytes(backup.Stream, r))));

        Assert.Equal("state/nvram/win11_VARS.fd", e.Member);
        Assert.Equal("tar header field 'mode' is not an octal or base-256 number", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task Non_zero_padding_is_refused()
    {
        var backup = await ZstdBackup();
        var xml = TarSurgery.Records(backup.Stream).First(r => r.Name == MemberNames.DomainXml);

        var e = await StreamFixtures.RefusedAsync(Flip(backup.Stream, xml.End - 1));

        Assert.Equal(MemberNames.DomainXml, e.Member);
        Assert.Contains("non-zero bytes in the padding", e.Message);
    }

    // ---- order, duplicates, trailer -----------------------------------------------------------------

    [Fact(Timeout = 10_000)]
    public async Task Swapped_data_members_are_refused()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);
        var i = records.FindIndex(r => r.Name == "disks/vda/0000000000050000.zst");
        (records[i], records[i + 1]) = (records[i + 1], records[i]);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(records.Select(r => TarSurgery.Bytes(backup.Stream, r))));

        Assert.Equal("disks/vda/0000000000060000.zst", e.Member);
        Assert.Contains("unexpected offset: member 'disks/vda/0000000000050000.zst' is missing", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_that_is_not_first_is_refused()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);
        (records[0], records[1]) = (records[1], records[0]);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(records.Select(r => TarSurgery.Bytes(backup.Stream, r))));

        Assert.Equal(MemberNames.DomainXml, e.Member);
        Assert.Contains("the first member must be virtbackup/manifest.json", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_duplicated_member_is_refused()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);
        var blocks = records.Select(r => TarSurgery.Bytes(backup.Stream, r)).ToList();
        var i = records.FindIndex(r => r.Name == "disks/vda/0000000000020000.zst");
        blocks.Insert(i + 1, blocks[i]);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(blocks));

        Assert.Equal("disks/vda/0000000000020000.zst", e.Member);
        Assert.Contains("duplicate member", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_member_missing_from_the_trailer_is_refused()
    {
        var backup = await ZstdBackup();
        var edited = TarSurgery.EditTrailer(backup.Stream, t =>
        {
            var members = t["members"]!.AsArray();
            members.RemoveAt(7);
            t["memberCount"] = members.Count;
        });

        var e = await StreamFixtures.RefusedAsync(edited);

        Assert.Equal("disks/vda/0000000000010000.zst", e.Member);
        Assert.Contains("member is in the stream but missing from the trailer", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_trailer_listing_a_member_the_stream_lacks_is_refused()
    {
        var backup = await ZstdBackup();
        var edited = TarSurgery.EditTrailer(backup.Stream, t =>
        {
            var members = t["members"]!.AsArray();
            members.Add(JsonNode.Parse("""{"name":"disks/vdb/0000000000020000.zst","storedSize":1,"size":1,"sha256":"00"}"""));
        });

        var e = await StreamFixtures.RefusedAsync(edited);

        Assert.Equal("disks/vdb/0000000000020000.zst", e.Member);
        Assert.Contains("listed in the trailer but missing from the stream", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_trailer_of_another_backup_is_refused()
    {
        var backup = await ZstdBackup();
        var other = await StreamFixtures.BuildAsync(Compression.Zstd, created: new DateTime(2027, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var otherTrailer = TarSurgery.Records(other.Stream).Single(r => r.Name == MemberNames.Trailer);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, MemberNames.Trailer, _ => TarSurgery.Content(other.Stream, otherTrailer)));

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("trailer belongs to another manifest", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_trailer_with_changed_whitespace_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, MemberNames.Trailer, c => [.. c, (byte)' ']));

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("trailer is not in the canonical form the writer produces", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Garbage_after_the_trailer_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync([.. backup.Stream, .. "garbage"u8.ToArray()]);

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains($"data after the trailer at byte {backup.Stream.Length}", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_member_after_the_trailer_is_refused_naming_it()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync([.. backup.Stream[..^1024], .. TarSurgery.Member("state/tpm/extra", [1, 2, 3]), .. new byte[1024]]);

        Assert.Equal("state/tpm/extra", e.Member);
        Assert.Contains("member after the trailer", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Extra_zero_blocks_after_the_trailer_are_accepted()
    {
        var backup = await ZstdBackup();

        var members = await StreamFixtures.ReadAllAsync([.. backup.Stream, .. new byte[9216]]);

        Assert.IsType<TrailerMember>(members[^1]);
    }

    // ---- hostile entries ----------------------------------------------------------------------------

    [Theory(Timeout = 10_000)]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("../x", "name has a '..' segment")]
    [InlineData("state/tpm/../../x", "name has a '..' segment")]
    [InlineData("state/tpm//x", "name has an empty path segment")]
    [InlineData("state\\tpm\\x", "name contains a backslash")]
    [InlineData("etc/passwd", "unknown top-level name (expected virtbackup/, state/nvram/, state/tpm/ or disks/)")]
    [InlineData("disks/vda/../../x", "name has a '..' segment")]
    [InlineData("disks/vda/00000000000000zz.zst", "disk data offset must be 16 lowercase hex digits")]
    [InlineData("disks/vda/0000000000000000.tar", "unknown disk member (expected extents.json, extents.txt, extents-<16 hex digits>.txt or <16 hex digits>.zst/.raw)")]
    public async Task Hostile_names_are_refused(string name, string problem)
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(AfterPrologue(backup.Stream, TarSurgery.Member(name, [1, 2, 3])));

        Assert.Equal(name, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Theory(Timeout = 10_000)]
    [InlineData(TarEntryType.SymbolicLink, "state/tpm/link", "is a symbolic link entry (type '2'); only regular files are allowed")]
    [InlineData(TarEntryType.HardLink, "state/tpm/link", "is a hard link entry (type '1'); only regular files are allowed")]
    [InlineData(TarEntryType.CharacterDevice, "state/tpm/dev", "is a character device entry (type '3'); only regular files are allowed")]
    [InlineData(TarEntryType.BlockDevice, "disks/vda/sda", "is a block device entry (type '4'); only regular files are allowed")]
    [InlineData(TarEntryType.Directory, "state/tpm/tpm2/", "is a directory entry (type '5'); only regular files are allowed")]
    [InlineData(TarEntryType.Fifo, "state/tpm/fifo", "is a fifo entry (type '6'); only regular files are allowed")]
    public async Task Entries_other_than_regular_files_are_refused(TarEntryType type, string name, string problem)
    {
        var backup = await ZstdBackup();
        var entry = DotNetTarEntry(type, name, e =>
        {
            if (type is TarEntryType.SymbolicLink or TarEntryType.HardLink)
            {
                e.LinkName = "/etc/shadow";
            }
        });

        var e = await StreamFixtures.RefusedAsync(AfterPrologue(backup.Stream, entry));

        Assert.Equal(name, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_gnu_format_header_is_judged_by_its_member_like_a_ustar_one()
    {
        var backup = await ZstdBackup();
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Gnu, leaveOpen: true))
        {
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "state/tpm/x"));
        }

        var e = await StreamFixtures.RefusedAsync(AfterPrologue(backup.Stream, ms.ToArray()[..^1024]));

        Assert.Equal("state/tpm/x", e.Member);
        Assert.Equal("the NVRAM member the manifest announces is missing (it must come before the TPM files)", e.Problem);
    }

    // ---- sizes and bombs ----------------------------------------------------------------------------

    [Fact(Timeout = 10_000)]
    public async Task An_oversized_member_is_refused_before_its_content_is_read()
    {
        var backup = await ZstdBackup();
        var header = new byte[512];
        TarHeader.Write(header, "state/nvram/huge.fd", 6L * 1024 * 1024 * 1024);

        var e = await StreamFixtures.RefusedAsync(AfterPrologue(backup.Stream, header));

        Assert.Equal("state/nvram/huge.fd", e.Member);
        Assert.Equal($"member of {6L * 1024 * 1024 * 1024} bytes is larger than the {16 * 1024 * 1024} bytes allowed for it", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_raw_data_member_larger_than_its_piece_is_refused()
    {
        var backup = await RawBackup();

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, "disks/vdb/0000000000010000.raw", c => [.. c, 0]));

        Assert.Equal("disks/vdb/0000000000010000.raw", e.Member);
        Assert.Equal("holds 4465 bytes; the map and member size put 4464 bytes here", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_zstd_frame_declaring_more_content_than_its_piece_is_refused_without_decoding_it()
    {
        var backup = await ZstdBackup();
        using var compressor = new Compressor(1);
        compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        var bomb = compressor.Wrap(new byte[64 * 1024 * 1024]).ToArray(); // 64 MiB of zeros in a few KiB

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, "disks/vdb/0000000000010000.zst", _ => bomb));

        Assert.Equal("disks/vdb/0000000000010000.zst", e.Member);
        Assert.Equal("zstd frame declares 67108864 bytes of content, expected 4464", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_zstd_frame_without_checksum_is_refused()
    {
        var backup = await ZstdBackup();
        using var compressor = new Compressor(1);
        compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 0);
        var frame = compressor.Wrap(backup.Disks[1].Image.AsSpan(65536, 4464)).ToArray();

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, "disks/vdb/0000000000010000.zst", _ => frame));

        Assert.Equal("zstd frame has no content checksum", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_zstd_frame_without_content_size_is_refused()
    {
        var backup = await ZstdBackup();
        using var compressor = new Compressor(1);
        compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        compressor.SetParameter(ZSTD_cParameter.ZSTD_c_contentSizeFlag, 0);
        var frame = compressor.Wrap(backup.Disks[1].Image.AsSpan(65536, 4464)).ToArray();

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, "disks/vdb/0000000000010000.zst", _ => frame));

        Assert.Equal("zstd frame does not declare its content size", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task Two_zstd_frames_in_one_member_are_refused()
    {
        var backup = await ZstdBackup();
        var record = TarSurgery.Records(backup.Stream).Single(r => r.Name == "disks/vdb/0000000000010000.zst");
        var frame = TarSurgery.Content(backup.Stream, record);

        var e = await StreamFixtures.RefusedAsync(TarSurgery.ReplaceContent(backup.Stream, record.Name, _ => [.. frame, .. frame[..20]]));

        Assert.Equal("disks/vdb/0000000000010000.zst", e.Member);
        Assert.StartsWith("holds 20 bytes after its zstd frame", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task Data_outside_the_maps_data_extents_is_refused()
    {
        var backup = await RawBackup();
        var records = TarSurgery.Records(backup.Stream);
        var blocks = records.Select(r => TarSurgery.Bytes(backup.Stream, r)).ToList();
        var i = records.FindIndex(r => r.Name == "disks/vdb/0000000000010000.raw");
        blocks.Insert(i + 1, TarSurgery.Member("disks/vdb/0000000000020000.raw", new byte[100]));

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(blocks));

        Assert.Equal("disks/vdb/0000000000020000.raw", e.Member);
        Assert.Contains("this member lies outside the map's data extents", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_tar_bomb_of_tiny_tpm_members_is_cut_off()
    {
        var backup = await ZstdBackup();
        var records = TarSurgery.Records(backup.Stream);
        var blocks = records.Take(3).Select(r => TarSurgery.Bytes(backup.Stream, r)).ToList();
        for (var i = 0; i < 10_000; i++)
        {
            blocks.Add(TarSurgery.Member($"state/tpm/f{i:d5}", [1]));
        }

        var e = await StreamFixtures.RefusedAsync(TarSurgery.Join(blocks));

        Assert.Equal("state/tpm/f00256", e.Member);
        Assert.Equal("more than 256 TPM files", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_member_size_above_the_readers_limit_is_refused()
    {
        var disk = StreamFixtures.Disk("vda", 1 << 20, 1, new DiskExtent(0, 1 << 20, false));
        var backup = await StreamFixtures.BuildAsync(Compression.None, memberSize: 1 << 20, disks: [disk]);

        var e = await StreamFixtures.RefusedAsync(backup.Stream, new ReaderOptions { MaxMemberSize = 512 * 1024 });

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.Equal("member size 1048576 is larger than this reader accepts (524288)", e.Problem);
    }

    // ---- JSON members -------------------------------------------------------------------------------

    private static byte[] EditJson(byte[] stream, string member, Func<string, string> edit) =>
        TarSurgery.ReplaceContent(stream, member, c => Encoding.UTF8.GetBytes(edit(Encoding.UTF8.GetString(c))));

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_of_another_format_version_is_refused_as_unsupported()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, MemberNames.Manifest,
            j => j.Replace("\"formatVersion\": 4,", "\"formatVersion\": 5,\n  \"newThing\": true,")));

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.Equal("format version 5 is not supported (this build reads versions 1 to 4)", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_with_an_unknown_property_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, MemberNames.Manifest,
            j => j.Replace("\"nvramPresent\"", "\"surprise\": 1,\n  \"nvramPresent\"")));

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.StartsWith("invalid JSON: ", e.Problem);
        Assert.Contains("surprise", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_with_an_integer_enum_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, MemberNames.Manifest, j => j.Replace("\"level\": \"full\"", "\"level\": 1")));

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.StartsWith("invalid JSON: ", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_breaking_the_level_rules_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, MemberNames.Manifest, j => j.Replace("\"level\": \"full\"", "\"level\": \"inc\"")));

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.Equal("an inc backup needs a parentCheckpoint", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_manifest_without_the_fulls_checkpoint_as_parent_is_refused()
    {
        var backup = await ZstdBackup();

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, MemberNames.Manifest, j => j.Replace("\"level\": \"full\"", "\"level\": \"diff\"")));

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.Equal("a diff backup needs a parentCheckpoint", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_version_1_json_map_that_is_not_canonical_is_refused()
    {
        var backup = await ZstdBackup(formatVersion: 1);

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, "disks/vdb/extents.json", j => j.Replace(
            "\"offset\": 70000,\n      \"length\": 10000,",
            "\"offset\": 70000,\n      \"length\": 5000,\n      \"zero\": true\n    },\n    {\n      \"offset\": 75000,\n      \"length\": 5000,")));

        Assert.Equal("disks/vdb/extents.json", e.Member);
        Assert.Equal("adjacent extents of the same kind are not merged", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_version_1_json_map_reaching_past_the_virtual_size_is_refused()
    {
        var backup = await ZstdBackup(formatVersion: 1);

        var e = await StreamFixtures.RefusedAsync(EditJson(backup.Stream, "disks/vdb/extents.json", j => j.Replace("\"length\": 10000,", "\"length\": 300000,")));

        Assert.Equal("disks/vdb/extents.json", e.Member);
        Assert.Equal("extent [70000, +300000) goes past the virtual size 300000", e.Problem);
    }

    // ---- not a stream at all ------------------------------------------------------------------------

    [Fact(Timeout = 10_000)]
    public async Task Non_tar_input_is_refused()
    {
        var e = await StreamFixtures.RefusedAsync(Encoding.ASCII.GetBytes(new string('x', 4096)));

        Assert.Equal("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", e.Member);
        Assert.Equal("the input is not a VirtBackup tar stream (no valid tar header at the start)", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task Empty_input_is_refused_naming_the_missing_manifest()
    {
        var e = await StreamFixtures.RefusedAsync([]);

        Assert.Equal(MemberNames.Manifest, e.Member);
        Assert.Contains("missing: the stream ends at byte 0", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_tar_of_other_files_is_refused()
    {
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "home/user/notes.txt") { DataStream = new MemoryStream([1, 2, 3]) });
        }

        var e = await StreamFixtures.RefusedAsync(ms.ToArray());

        Assert.Equal("home/user/notes.txt", e.Member);
        Assert.StartsWith("unknown top-level name", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_reader_refuses_to_be_enumerated_twice()
    {
        var backup = await ZstdBackup();
        var reader = new BackupStreamReader(new MemoryStream(backup.Stream));
        await reader.VerifyAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var _ in reader.ReadAsync()) { }
        });
    }
}
