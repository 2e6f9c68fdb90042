using System.Diagnostics;
using VirtBackup.Tests.Fakes;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>
/// Restores of the disk of issue 14 (64 KiB extents scattered over 1 TiB) into qcow2 (a full written directly, an
/// incremental through an overlay qemu-nbd serves): byte-exact against a reference image (<c>qemu-img compare</c>),
/// and with the writes each stream needs and no more. 2,000 of
/// the 60,000 extents over the same share of the disk; <c>VIRTBACKUP_LONG_TESTS=1</c>: all of them (the benchmark's
/// size; the output gives wall and CPU time).
/// </summary>
public sealed class ScatteredRestoreTests(ITestOutputHelper output)
{
    private static bool Long => Environment.GetEnvironmentVariable("VIRTBACKUP_LONG_TESTS") == "1";

    private readonly ScatteredChain _chain = new(Long ? 60_000 : 2_000);

    [Fact(Timeout = 600_000)]
    public async Task A_full_of_scattered_extents_restores_into_qcow2_byte_exact_with_each_cluster_it_touches_written_once_and_no_zero_request()
    {
        using var tree = new RestoredTree();
        var full = Path.Combine(tree.Parent, "full.tar");
        await _chain.WriteFullAsync(full);

        var log = await RestoreAsync(tree, full, $"full of {_chain.Count} extents");

        // Each 64 KiB extent starts 0-6 blocks of 4 KiB into a 64 KiB cluster: one or two clusters, each written once.
        var clusters = _chain.FullMap().Where(e => !e.Zero).SelectMany(e => new[] { e.Offset >> 16, (e.Offset + e.Length - 1) >> 16 }).Distinct().Count();
        Assert.Equal(Written(clusters, clusters * 65536L, 0, 0), log);
        await AssertSameAsync(tree, withInc: false);
    }

    [Fact(Timeout = 600_000)]
    public async Task An_incremental_over_a_scattered_full_restores_byte_exact_with_one_request_per_extent_of_its_map_and_none_elsewhere()
    {
        using var tree = new RestoredTree();
        var full = Path.Combine(tree.Parent, "full.tar");
        var inc = Path.Combine(tree.Parent, "inc.tar");
        await _chain.WriteFullAsync(full);
        await _chain.WriteIncAsync(inc);
        await RestoreAsync(tree, full, $"full of {_chain.Count} extents");

        var log = await RestoreAsync(tree, inc, $"inc of {_chain.Count} extents");

        var map = _chain.IncMap().ToList();
        var data = map.Where(e => !e.Zero).ToList();
        var zeros = map.Where(e => e.Zero).ToList();
        Assert.Equal(Written(data.Count, data.Sum(e => e.Length), zeros.Count, zeros.Sum(e => e.Length)), log);
        await AssertSameAsync(tree, withInc: true);
    }

    [Fact(Timeout = 60_000)]
    public async Task Contiguous_data_of_many_members_fills_whole_clusters_of_a_new_qcow2_and_goes_through_an_overlay_in_requests_of_4_MiB()
    {
        using var tree = new RestoredTree();
        // 64 KiB members: 10 MiB of data in 161 members (the extent starts 4 KiB into a member-size block).
        DiskExtent[] extents = [new(4096, 10 << 20, false), new(4096 + (10 << 20), (6 << 20) - 4096, true)];
        var full = ChainFixtures.Full() with { Disks = [StreamFixtures.Disk("vda", 16 << 20, 3, extents)] };
        var changed = StreamFixtures.Disk("vda", 16 << 20, 4, extents[0]);
        var inc = full with { Level = BackupLevel.Inc, Checkpoint = ChainFixtures.Checkpoint("chain-a", 2), Parent = full.Checkpoint, Disks = [changed] };
        var fullStream = Path.Combine(tree.Parent, "full.tar");
        var incStream = Path.Combine(tree.Parent, "inc.tar");
        await File.WriteAllBytesAsync(fullStream, await ChainFixtures.BuildAsync(full));
        await File.WriteAllBytesAsync(incStream, await ChainFixtures.BuildAsync(inc));

        var fullLog = await RestoreAsync(tree, fullStream, "full of one 10 MiB extent");
        var restoredFull = await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda", DiskFormat.Qcow2), DiskFormat.Qcow2, 16 << 20);
        var incLog = await RestoreAsync(tree, incStream, "inc of the same 10 MiB extent");

        Assert.Equal(Written(161, 161L << 16, 0, 0), fullLog); // the clusters 0-160 the extent touches, each once
        Assert.Equal(ChainFixtures.Image(full, "vda"), restoredFull);
        Assert.Equal(Written(3, 10 << 20, 0, 0), incLog); // qemu-nbd: the segments joined into requests of 4, 4 and 2 MiB
        Assert.Equal(changed.Image, await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda", DiskFormat.Qcow2), DiskFormat.Qcow2, 16 << 20));
    }

    private static string Written(long writes, long writeBytes, long zeroes, long zeroBytes) =>
        $"Debug disk \"vda\" written: {writes} write requests of {writeBytes} bytes, {zeroes} zero requests for {zeroBytes} bytes";

    /// <summary>Restores <paramref name="stream"/> into qcow2 under the tree's root; returns the line that counts the disk's requests.</summary>
    private async Task<string> RestoreAsync(RestoredTree tree, string stream, string what)
    {
        var lines = new LogLines();
        var run = new RestoreRun(null, QemuConf.Defaults, lines.Logger);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await using (var input = File.OpenRead(stream))
        {
            await run.RunAsync(new RestoreOptions(null, Format: DiskFormat.Qcow2, TargetRoot: tree.Root), input, CancellationToken.None);
        }

        var wall = clock.Elapsed;
        var counts = Assert.Single(lines.Lines, l => l.Contains(" written: ", StringComparison.Ordinal));
        output.WriteLine($"{what} ({new FileInfo(stream).Length} bytes): wall {wall.TotalSeconds:F2} s, " +
            $"CPU of this process {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F2} s; {counts}");
        return counts;
    }

    private async Task AssertSameAsync(RestoredTree tree, bool withInc)
    {
        var reference = Path.Combine(tree.Parent, "reference.raw");
        await _chain.WriteReferenceAsync(reference, withInc);
        var said = await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "qcow2", reference, tree.Disk(ScatteredChain.Target, DiskFormat.Qcow2));
        Assert.Equal("Images are identical.", said.Trim());
    }
}
