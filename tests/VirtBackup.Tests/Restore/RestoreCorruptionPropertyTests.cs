namespace VirtBackup.Tests.Restore;

/// <summary>
/// Hundreds of broken variants of one valid stream — truncated at and inside every member, bit flips in headers
/// and content (zstd frames included), members swapped, dropped, duplicated, renamed to hostile paths, and valid
/// streams with hostile domain names — must each be refused, write nothing outside the target root, and leave the
/// target exactly as it was: the previous restore untouched, or nothing at all in an empty root.
/// </summary>
public class RestoreCorruptionPropertyTests(ITestOutputHelper output)
{
    private static readonly string[] HostileNames =
    [
        "../../etc/cron.d/evil", "/etc/passwd", "state/nvram/../../../evil", "state/tpm/../../x", "state/tpm/a/../../b",
        "disks/vda/../../../x", "state/nvram/a/b", "state/tpm/a\\b", "disks/../vda/extents.json", "state/tpm//x", "./virtbackup/manifest.json",
    ];

    internal static IEnumerable<(string Description, byte[] Stream)> Variants(byte[] valid)
    {
        var rnd = new Random(20261127);
        var records = TarSurgery.Records(valid);
        for (var cut = 0; cut < valid.Length; cut += 512)
        {
            yield return ($"truncated at {cut}", valid[..cut]);
        }

        yield return ("truncated one byte short", valid[..^1]);
        yield return ("without the end-of-archive blocks", valid[..(int)records[^1].End]);
        foreach (var r in records)
        {
            yield return ($"truncated inside the header of {r.Name}", valid[..(int)(r.HeaderOffset + 100)]);
            if (r.Size > 1)
            {
                yield return ($"truncated inside the content of {r.Name}", valid[..(int)(r.ContentOffset + r.Size / 2)]);
            }

            yield return ($"bit flip in the header of {r.Name}", Flip(valid, r.HeaderOffset + rnd.Next(512), rnd));
            if (r.Size > 0)
            {
                yield return ($"bit flip in the content of {r.Name}", Flip(valid, r.ContentOffset + rnd.Next((int)r.Size), rnd));
            }
        }

        for (var i = 0; i < 60; i++)
        {
            yield return ($"random bit flip {i}", Flip(valid, rnd.Next(valid.Length), rnd));
        }

        foreach (var variant in MemberReorderings.Of(valid, rnd, swaps: 20))
        {
            yield return variant;
        }

        List<byte[]> Blocks() => records.Select(r => TarSurgery.Bytes(valid, r)).ToList();
        foreach (var hostile in HostileNames)
        {
            var victim = records[rnd.Next(records.Count)];
            var blocks = Blocks();
            blocks[records.IndexOf(victim)] = TarSurgery.Member(hostile, TarSurgery.Content(valid, victim));
            yield return ($"{victim.Name} renamed to {hostile}", TarSurgery.Join(blocks));
        }
    }

    private static byte[] Flip(byte[] valid, long at, Random rnd)
    {
        var copy = (byte[])valid.Clone();
        copy[at] ^= (byte)(1 << rnd.Next(8));
        return copy;
    }

    [Fact(Timeout = 240_000)]
    public async Task Every_broken_or_hostile_variant_is_refused_and_leaves_the_target_as_it_was()
    {
        var spec = ChainFixtures.Small();
        var valid = await ChainFixtures.BuildAsync(spec);
        var variants = Variants(valid).ToList();
        foreach (var name in new[] { "../../etc/cron.d/evil", "a/b", ".hidden", "x y", "-rf", "ok\u00e9" })
        {
            variants.Add(($"valid stream of a domain named '{name}'", await ChainFixtures.BuildAsync(spec with { DomainName = name })));
        }

        using var previous = new RestoredTree();
        await previous.RestoreAsync(valid);
        Assert.Equal(6, previous.Files().Count);
        Assert.InRange(variants.Count, 200, 600);

        var failures = new List<string>();
        for (var i = 0; i < variants.Count; i++)
        {
            var (description, stream) = variants[i];
            using var tree = new RestoredTree();
            var overPrevious = i % 2 == 0;
            if (overPrevious)
            {
                tree.CopyFrom(previous);
            }

            var before = tree.Snapshot();
            try
            {
                await tree.RestoreAsync(stream, force: overPrevious);
                failures.Add($"{description}: accepted");
            }
            catch (VirtBackupException e) when (e is StreamFormatException or RestoreRefusedException)
            {
                // Refused, as it must be: now check what it left.
            }
            catch (Exception e)
            {
                failures.Add($"{description}: {e.GetType().Name}: {e.Message}");
            }

            if (!Directory.EnumerateFileSystemEntries(tree.Parent).SequenceEqual([tree.Root]))
            {
                failures.Add($"{description}: wrote next to the target root");
            }

            if (overPrevious && !before.SequenceEqual(tree.Snapshot()))
            {
                failures.Add($"{description}: changed the previous restore: {string.Join(", ", tree.Snapshot().Except(before).Select(e => e.Key))}");
            }

            if (!overPrevious && tree.Files().Count > 0)
            {
                failures.Add($"{description}: left files in an empty target: {string.Join(", ", tree.Files())}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {variants.Count} variants:\n" + string.Join("\n", failures));
        output.WriteLine($"{variants.Count} variants refused, none left a trace");
    }

    [Theory(Timeout = 180_000)]
    [InlineData(BackupLevel.Inc)]
    [InlineData(BackupLevel.Full)]
    public async Task A_broken_stream_onto_a_qcow2_chain_leaves_images_state_and_position_as_they_were(BackupLevel level)
    {
        var full = ChainFixtures.Full();
        var inc1 = ChainFixtures.Next(full, 2, 100);
        var next = level == BackupLevel.Inc ? ChainFixtures.Next(inc1, 3, 200) : ChainFixtures.Full("chain-b");
        var valid = await ChainFixtures.BuildAsync(next);
        var records = TarSurgery.Records(valid);
        var data = records.Last(r => r.Name.EndsWith(".zst", StringComparison.Ordinal));
        using var tree = new RestoredTree();
        await tree.RestoreAsync(full, DiskFormat.Qcow2);
        await tree.RestoreAsync(inc1, DiskFormat.Qcow2);
        var before = tree.Snapshot();
        (string, byte[])[] variants =
        [
            ("truncated inside the last data member", valid[..(int)(data.ContentOffset + data.Size / 2)]),
            ("bit flip in the last zstd frame", Flip(valid, data.ContentOffset + data.Size / 3, new Random(3))),
            ("trailer missing", valid[..(int)records[^1].HeaderOffset]),
            ("trailer cut short", valid[..(int)(records[^1].ContentOffset + 10)]),
            ("data after the end", [.. valid, .. TarSurgery.Member("virtbackup/manifest.json", [1])]),
        ];

        foreach (var (description, stream) in variants)
        {
            await Assert.ThrowsAsync<StreamFormatException>(() => tree.RestoreAsync(stream, DiskFormat.Qcow2, force: true));

            Assert.True(before.SequenceEqual(tree.Snapshot()), $"{description}: the restored chain changed");
        }

        await tree.RestoreAsync(valid, DiskFormat.Qcow2, force: true);
        Assert.Equal(ChainFixtures.Image(next, "vda"), await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda", DiskFormat.Qcow2), DiskFormat.Qcow2, ChainFixtures.DiskSize));
    }

    [Fact(Timeout = 120_000)]
    public async Task Broken_streams_through_the_cli_exit_6_and_leave_the_previous_restore_untouched()
    {
        var valid = await ChainFixtures.BuildAsync(ChainFixtures.Small());
        var records = TarSurgery.Records(valid);
        var data = records.First(r => r.Name.EndsWith(".zst", StringComparison.Ordinal));
        var trailer = records[^1];
        (string, byte[])[] variants =
        [
            ("truncated in the middle", valid[..(valid.Length / 2)]),
            ("zstd frame with a flipped bit", Flip(valid, data.ContentOffset + data.Size / 2, new Random(1))),
            ("no trailer", TarSurgery.Join(records.Take(records.Count - 1).Select(r => TarSurgery.Bytes(valid, r)))),
            ("trailer with a flipped bit", Flip(valid, trailer.ContentOffset + 40, new Random(2))),
            ("hostile member name", TarSurgery.Join(records.Select(r => r == records[2] ? TarSurgery.Member("state/nvram/../../x", TarSurgery.Content(valid, r)) : TarSurgery.Bytes(valid, r)))),
        ];
        using var previous = new RestoredTree();
        await previous.RestoreAsync(valid);

        foreach (var (description, stream) in variants)
        {
            using var tree = new RestoredTree();
            tree.CopyFrom(previous);
            var before = tree.Snapshot();

            var result = await VirtBackupCli.RunAsync(["restore", "--format", "raw", "--force", "--target-root", tree.Root], new MemoryStream(stream));

            Assert.True(result.ExitCode == 6, $"{description}: exit {result.ExitCode}: {result.StandardError}");
            Assert.Contains("Invalid backup stream: member '", result.StandardError);
            Assert.Empty(result.StandardOutput);
            Assert.Equal(before, tree.Snapshot());
            Assert.Equal([tree.Root], Directory.EnumerateFileSystemEntries(tree.Parent));
        }
    }
}
