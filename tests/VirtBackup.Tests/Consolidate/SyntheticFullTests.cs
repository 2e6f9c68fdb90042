using VirtBackup.Core.Consolidate;

namespace VirtBackup.Tests.Consolidate;

/// <summary>A full and three incrementals consolidated in-process: what the synthetic full holds and restores to.</summary>
public class SyntheticFullTests
{
    [Theory(Timeout = 120_000)]
    [InlineData(Compression.Zstd)]
    [InlineData(Compression.None)]
    public async Task A_synthetic_full_of_a_full_and_three_incrementals_restores_to_the_same_files_as_the_chain(Compression compression)
    {
        using var chain = await ConsolidatedChain.CreateAsync(compression);
        using var viaChain = new RestoredTree();
        using var viaSynthetic = new RestoredTree();
        foreach (var stream in chain.Streams)
        {
            await viaChain.RestoreAsync(stream);
        }

        var (synthetic, _) = await chain.ConsolidateAsync();
        var result = await viaSynthetic.RestoreAsync(synthetic);

        var last = chain.Specs[^1];
        Assert.Equal(ChainFixtures.Image(last, "vda"), await File.ReadAllBytesAsync(viaSynthetic.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(last, "vdb"), await File.ReadAllBytesAsync(viaSynthetic.Disk("vdb")));
        Assert.Equal(last.Nvram, await File.ReadAllBytesAsync(viaSynthetic.Nvram()));
        var expected = viaChain.Snapshot();
        var actual = viaSynthetic.Snapshot();
        var position = Path.GetRelativePath(viaChain.Root, viaChain.ChainPosition());
        expected.Remove(position);
        actual.Remove(position);
        Assert.Equal(expected, actual);
        Assert.Equal(("chain-a", "virtbackup-chain-a-0004", BackupLevel.Full),
            (result.Position.ChainId, result.Position.Checkpoint, result.Position.Level));
    }

    [Fact(Timeout = 60_000)]
    public async Task The_synthetic_manifest_is_a_full_at_the_newest_checkpoint_that_names_every_consolidated_stream()
    {
        using var chain = await ConsolidatedChain.CreateAsync();

        var (synthetic, result) = await chain.ConsolidateAsync();

        var manifest = TarSurgery.Records(synthetic)[0];
        var parsed = StreamJson.DeserializeManifest(TarSurgery.Content(synthetic, manifest), MemberNames.Manifest);
        Assert.Equal(result.Manifest, parsed with { Disks = result.Manifest.Disks, Warnings = result.Manifest.Warnings });
        Assert.Equal((BackupLevel.Full, "chain-a", "virtbackup-chain-a-0004", (string?)null),
            (parsed.Level, parsed.ChainId, parsed.Checkpoint, parsed.ParentCheckpoint));
        Assert.Equal(
            ["synthetic full: consolidated from 4 stream(s) of chain 'chain-a': full 'virtbackup-chain-a-0001' (2026-11-27T10:30:00Z), "
                + "inc 'virtbackup-chain-a-0002' (2026-11-27T10:30:00Z), inc 'virtbackup-chain-a-0003' (2026-11-27T10:30:00Z), "
                + "inc 'virtbackup-chain-a-0004' (2026-11-27T10:30:00Z)"],
            parsed.Warnings);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_synthetic_map_of_a_version_1_chain_is_the_merged_layout_with_zeros_where_the_newest_stream_zeroed_and_holes_where_none_wrote()
    {
        // The full leaves a 100-byte hole at 262144 (its zero extent ends there, its data starts at 262244): it stays a hole.
        using var chain = await ConsolidatedChain.CreateAsync(formatVersion: 1);

        var (synthetic, _) = await chain.ConsolidateAsync();

        var record = TarSurgery.Records(synthetic).Single(r => r.Name == MemberNames.DiskMap("vda"));
        var map = StreamJson.DeserializeMap(TarSurgery.Content(synthetic, record), record.Name);
        Assert.Equal(
            [
                new DiskExtent(0, 40_000, true), new DiskExtent(40_000, 164_000, false), new DiskExtent(204_000, 58_144, true),
                new DiskExtent(262_244, 237_756, false), new DiskExtent(500_000, 65_536, true), new DiskExtent(565_536, 34_464, false),
                new DiskExtent(708_192, 78_192, false), new DiskExtent(ChainFixtures.DiskSize - 5000, 5000, false),
            ],
            map.Extents);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_incremental_taken_after_the_chain_applies_on_its_synthetic_full()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        using var tree = new RestoredTree();
        var (synthetic, _) = await chain.ConsolidateAsync();

        await tree.RestoreAsync(synthetic);
        var result = await tree.RestoreAsync(chain.Later);

        Assert.Equal(ChainFixtures.Image(chain.Later, "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(chain.Later, "vdb"), await File.ReadAllBytesAsync(tree.Disk("vdb")));
        Assert.Equal(chain.Later.Nvram, await File.ReadAllBytesAsync(tree.Nvram()));
        Assert.Equal(("virtbackup-chain-a-0005", BackupLevel.Inc, 2), (result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
    }

    [Fact(Timeout = 60_000)]
    public async Task Data_members_of_a_version_1_chain_no_incremental_touched_are_the_fulls_exact_bytes_and_only_cut_ones_are_encoded_anew()
    {
        using var chain = await ConsolidatedChain.CreateAsync(formatVersion: 1);

        var (synthetic, result) = await chain.ConsolidateAsync();

        var identical = DataMembersIdenticalToTheFulls(chain, synthetic);
        // vda: the full's members at 262244, 327680, 393216 and 589824 and its tail member lie where no incremental wrote;
        // 0, 65536, 458752 and 524288 are cut by the incrementals' data or zeros. vdb: never changed.
        Assert.Equal(
            [
                "disks/vda/0000000000040064.zst", "disks/vda/0000000000050000.zst", "disks/vda/0000000000060000.zst",
                "disks/vda/0000000000090000.zst", "disks/vda/00000000000fec78.zst", "disks/vdb/0000000000010000.zst",
            ],
            identical);
        // Copied too: the last incremental's members at 131072, 196608 and 720896, whole in the merged map. Encoded anew: the
        // pieces at 40000, 65536, 458752, 565536 (the full's members cut) and 708192 (three incrementals' data in one member).
        Assert.Equal((9, 5), (result.Counts.CopiedMembers, result.Counts.EncodedMembers));
    }

    [Fact(Timeout = 60_000)]
    public async Task Data_members_of_a_version_2_chain_no_incremental_touched_are_the_fulls_exact_bytes()
    {
        using var chain = await ConsolidatedChain.CreateAsync(formatVersion: 2);

        var (synthetic, result) = await chain.ConsolidateAsync();

        var identical = DataMembersIdenticalToTheFulls(chain, synthetic);
        // vda: the full's members at 262244, 327680 and 393216 lie where no incremental wrote. Its packed tail member
        // [589824, 600000) + [1043576, 1 MiB) does not survive: the incrementals' data at 708192 now lies between its pieces.
        Assert.Equal(
            [
                "disks/vda/0000000000040064.zst", "disks/vda/0000000000050000.zst", "disks/vda/0000000000060000.zst",
                "disks/vdb/0000000000010000.zst",
            ],
            identical);
        Assert.Equal(2, result.Manifest.FormatVersion);
        Assert.Equal((6, 6), (result.Counts.CopiedMembers, result.Counts.EncodedMembers)); // and 2 of the last incremental
    }

    [Fact(Timeout = 60_000)]
    public async Task A_corrupted_member_that_must_be_decoded_is_refused_as_an_invalid_stream()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        // vda's member at 0 of the full is partly overwritten by zeros in every incremental: it is decoded, never copied.
        var member = TarSurgery.Records(chain.Streams[0]).Single(r => r.Name == MemberNames.DiskData("vda", 0, Compression.Zstd));
        var bytes = File.ReadAllBytes(chain.Paths[0]);
        bytes[member.ContentOffset + member.Size / 2] ^= 0x40;
        await File.WriteAllBytesAsync(chain.Paths[0], bytes);

        var refused = await Assert.ThrowsAsync<StreamFormatException>(() => chain.ConsolidateAsync());

        Assert.Equal(MemberNames.DiskData("vda", 0, Compression.Zstd), refused.Member);
        Assert.Contains(chain.Paths[0], refused.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_copy_stream_is_refused_because_it_starts_no_chain()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        var copy = Path.Combine(chain.Dir, "copy.tar");
        await File.WriteAllBytesAsync(copy, await ChainFixtures.BuildAsync(ChainFixtures.Full() with { Level = BackupLevel.Copy, ChainId = null, Checkpoint = null }));

        var refused = await Assert.ThrowsAsync<ConsolidateRefusedException>(() => chain.ConsolidateAsync([copy]));

        Assert.Contains("is a copy, which starts no chain", refused.Message);
    }

    /// <summary>The synthetic full's data members that are byte for byte (header, content, padding) the full's member of that name.</summary>
    private static List<string> DataMembersIdenticalToTheFulls(ConsolidatedChain chain, byte[] synthetic)
    {
        var full = chain.Streams[0];
        var fullMembers = TarSurgery.Records(full).ToDictionary(r => r.Name);
        return TarSurgery.Records(synthetic)
            .Where(r => r.Name.StartsWith("disks/", StringComparison.Ordinal) && MemberNames.Parse(r.Name).Kind == MemberKind.DiskData)
            .Where(r => fullMembers.TryGetValue(r.Name, out var f) && TarSurgery.Bytes(full, f).AsSpan().SequenceEqual(TarSurgery.Bytes(synthetic, r)))
            .Select(r => r.Name)
            .ToList();
    }
}
