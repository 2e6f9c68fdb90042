using System.Security.Cryptography;
using System.Text.Json.Nodes;
using VirtBackup.Core.Recovery;
using VirtBackup.Tests.Consolidate;
using VirtBackup.Tests.Nbd.Peers;
using VirtBackup.Tests.Restore;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// Format version 4: a zstd data member's trailer entry proves its stored bytes (<c>storedSha256</c>) and leaves the
/// content to the frame's XXH64 checksum, instead of a second SHA-256 over the content. Every other member, and every
/// member of versions 1 to 3, still carries its content's SHA-256.
/// </summary>
public sealed class ContentHashTests
{
    private static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static JsonArray TrailerMembers(byte[] stream) =>
        JsonNode.Parse(TarSurgery.Content(stream, TarSurgery.Records(stream).Single(r => r.Name == MemberNames.Trailer)))!["members"]!.AsArray();

    private static JsonObject Entry(JsonObject trailer, string name) =>
        trailer["members"]!.AsArray().Select(m => m!.AsObject()).Single(m => (string?)m["name"] == name);

    [Fact(Timeout = 30_000)]
    public async Task A_version_4_zstd_data_member_is_listed_with_its_stored_bytes_hash_only_and_every_other_member_with_its_contents()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var records = TarSurgery.Records(backup.Stream).Where(r => r.Name != MemberNames.Trailer).ToList();

        var entries = TrailerMembers(backup.Stream);

        Assert.Equal(4, backup.Manifest.FormatVersion);
        Assert.Equal(records.Select(r => r.Name), entries.Select(e => (string?)e!["name"]));
        var data = 0;
        foreach (var (record, entry) in records.Zip(entries.Select(e => e!.AsObject())))
        {
            var stored = TarSurgery.Content(backup.Stream, record);
            if (record.Name.EndsWith(".zst", StringComparison.Ordinal))
            {
                data++;
                Assert.Equal(["name", "storedSize", "size", "storedSha256"], entry.Select(p => p.Key));
                Assert.Equal(Sha(stored), (string?)entry["storedSha256"]);
            }
            else
            {
                Assert.Equal(["name", "storedSize", "size", "sha256"], entry.Select(p => p.Key));
                Assert.Equal(Sha(stored), (string?)entry["sha256"]);
            }
        }

        Assert.Equal(10, data);
        var members = await StreamFixtures.ReadAllAsync(backup.Stream);
        foreach (var disk in backup.Disks.Where(d => !d.Excluded))
        {
            Assert.Equal(disk.Image, Rebuild(members, disk.Target, disk.VirtualSize));
        }
    }

    private static byte[] Rebuild(IEnumerable<StreamMember> members, string target, long size)
    {
        var rebuilt = new byte[size];
        foreach (var data in members.OfType<DiskDataMember>().Where(d => d.Target == target))
        {
            foreach (var s in data.Segments)
            {
                data.Data.Span.Slice(s.ContentOffset, s.Length).CopyTo(rebuilt.AsSpan((int)s.DiskOffset));
            }
        }

        return rebuilt;
    }

    [Theory(Timeout = 30_000)]
    [InlineData(3)]
    [InlineData(2)]
    [InlineData(1)]
    public async Task A_zstd_data_member_of_an_older_version_is_still_listed_with_its_contents_hash_and_read_back(int version)
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: version);
        var members = await StreamFixtures.ReadAllAsync(backup.Stream);
        var data = members.OfType<DiskDataMember>().ToList();

        var entries = TrailerMembers(backup.Stream).Select(e => e!.AsObject()).Where(e => ((string?)e["name"])!.EndsWith(".zst", StringComparison.Ordinal)).ToList();

        Assert.Equal(data.Select(d => d.Name), entries.Select(e => (string?)e["name"]));
        foreach (var (member, entry) in data.Zip(entries))
        {
            Assert.Equal(["name", "storedSize", "size", "sha256", "storedSha256"], entry.Select(p => p.Key));
            Assert.Equal(Sha(member.Data.Span), (string?)entry["sha256"]);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_raw_data_member_of_version_4_is_listed_with_its_contents_hash()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.None);

        var raw = TrailerMembers(backup.Stream).Select(e => e!.AsObject()).Where(e => ((string?)e["name"])!.EndsWith(".raw", StringComparison.Ordinal)).ToList();

        Assert.Equal(10, raw.Count);
        Assert.All(raw, e => Assert.Equal(["name", "storedSize", "size", "sha256"], e.Select(p => p.Key)));
    }

    [Theory(Timeout = 30_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_version_4_trailer_that_gives_a_zstd_member_a_content_hash_is_refused(bool listOnly)
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var edited = TarSurgery.EditTrailer(backup.Stream, t => Entry(t, "disks/vda/0000000000010000.zst").Insert(3, "sha256", new string('0', 64)));

        var e = await StreamFixtures.RefusedAsync(edited, listOnly ? ReaderOptions.ListOnly : null);

        Assert.Equal("disks/vda/0000000000010000.zst", e.Member);
        Assert.Equal("the trailer gives a content SHA-256, which a zstd member of format version 4 does not have", e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_version_3_trailer_without_the_content_hash_of_a_zstd_member_is_refused()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: 3);
        var edited = TarSurgery.EditTrailer(backup.Stream, t => Entry(t, "disks/vda/0000000000010000.zst").Remove("sha256"));

        var e = await StreamFixtures.RefusedAsync(edited);

        Assert.Equal("disks/vda/0000000000010000.zst", e.Member);
        Assert.Equal("the trailer gives no content SHA-256, which this member of format version 3 must have", e.Problem);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_version_4_frame_changed_with_its_stored_hash_forged_to_match_is_refused_by_the_frames_own_checksum()
    {
        // The vda member at 65536 holds random content: zstd stores it in raw blocks, so one flipped content byte
        // leaves a well-formed frame whose XXH64 no longer matches. The trailer is made to agree with the new bytes.
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        const string name = "disks/vda/0000000000010000.zst";
        var record = TarSurgery.Records(backup.Stream).Single(r => r.Name == name);
        var changed = (byte[])backup.Stream.Clone();
        changed[record.ContentOffset + record.Size / 2] ^= 0x01;
        var forged = TarSurgery.EditTrailer(changed, t => Entry(t, name)["storedSha256"] = Sha(TarSurgery.Content(changed, record)));

        var e = await StreamFixtures.RefusedAsync(forged);

        Assert.Equal(name, e.Member);
        Assert.Equal("zstd frame is corrupt (Restored data doesn't match checksum)", e.Problem);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_stream_file_whose_trailer_gives_a_version_4_zstd_member_a_content_hash_is_refused_when_served()
    {
        using var dir = new TempDir();
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var path = dir.File("full.tar");
        await File.WriteAllBytesAsync(path, TarSurgery.EditTrailer(backup.Stream, t => Entry(t, "disks/vdb/0000000000010000.zst").Insert(3, "sha256", new string('0', 64))));
        using var file = StreamFile.Open(path);

        var e = Assert.Throws<StreamFormatException>(() => file.DataMembers(file.Disks["vdb"]));

        Assert.Equal("disks/vdb/0000000000010000.zst", e.Member);
        Assert.Equal($"in '{path}': the trailer's hashes are not those of a zstd member of format version 4", e.Problem);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_version_3_full_with_version_4_incrementals_consolidates_into_a_version_3_full_whose_every_member_has_its_contents_hash()
    {
        using var chain = await ConsolidatedChain.CreateAsync(formatVersion: 3, incrementalFormatVersion: 4);

        var (synthetic, result) = await chain.ConsolidateAsync();

        // Members copied from the version-4 incrementals had no content hash: the writer decoded them to give one.
        Assert.Equal(3, result.Manifest.FormatVersion);
        var members = await StreamFixtures.ReadAllAsync(synthetic);
        var data = members.OfType<DiskDataMember>().ToList();
        var entries = TrailerMembers(synthetic).Select(e => e!.AsObject()).Where(e => ((string?)e["name"])!.EndsWith(".zst", StringComparison.Ordinal)).ToList();
        Assert.Equal(data.Select(d => d.Name), entries.Select(e => (string?)e["name"]));
        foreach (var (member, entry) in data.Zip(entries))
        {
            Assert.Equal(Sha(member.Data.Span), (string?)entry["sha256"]);
        }

        // As for a chain of one version (SyntheticFullTests): the full's 4 untouched members and 2 of the last
        // incremental's are copied, 6 pieces are encoded anew.
        Assert.Equal((6, 6), (result.Counts.CopiedMembers, result.Counts.EncodedMembers));
        using var tree = new RestoredTree();
        await tree.RestoreAsync(synthetic);
        Assert.Equal(ChainFixtures.Image(chain.Specs[^1], "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(chain.Specs[^1], "vdb"), await File.ReadAllBytesAsync(tree.Disk("vdb")));
    }
}
