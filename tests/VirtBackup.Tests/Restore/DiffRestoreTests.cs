namespace VirtBackup.Tests.Restore;

/// <summary>A differential applies right after its chain's full only; incrementals taken after it follow it.</summary>
public class DiffRestoreTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_full_then_a_diff_taken_after_an_incremental_give_the_disks_and_state_of_the_diff()
    {
        using var tree = new RestoredTree();
        var (full, _, diff) = ChainFixtures.FullIncAndDiff();

        await tree.RestoreAsync(full);
        var result = await tree.RestoreAsync(diff);

        Assert.Equal(ChainFixtures.Image(diff, "vda"), await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda"), DiskFormat.Raw, ChainFixtures.DiskSize));
        Assert.Equal(ChainFixtures.Image(full, "vdb"), await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vdb"), DiskFormat.Raw, 300_000));
        Assert.Equal(diff.Nvram, await File.ReadAllBytesAsync(tree.Nvram()));
        Assert.Equal(("virtbackup-chain-a-0003", BackupLevel.Diff, 2), (result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_full_a_diff_and_an_incremental_taken_after_the_diff_give_the_disks_of_the_incremental()
    {
        using var tree = new RestoredTree();
        var (full, _, diff) = ChainFixtures.FullIncAndDiff();
        var after = ChainFixtures.Next(diff, 4, 300);

        await tree.RestoreAsync(full, DiskFormat.Qcow2);
        await tree.RestoreAsync(diff, DiskFormat.Qcow2);
        var result = await tree.RestoreAsync(after, DiskFormat.Qcow2);

        Assert.Equal(ChainFixtures.Image(after, "vda"),
            await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda", DiskFormat.Qcow2), DiskFormat.Qcow2, ChainFixtures.DiskSize));
        Assert.Equal(("virtbackup-chain-a-0004", BackupLevel.Inc, 3), (result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_diff_applied_after_an_incremental_of_its_chain_is_refused_saying_to_restore_the_full_then_the_diff()
    {
        using var tree = new RestoredTree();
        var (full, inc, diff) = ChainFixtures.FullIncAndDiff();
        await tree.RestoreAsync(full);
        await tree.RestoreAsync(inc);

        var e = await tree.RefusedAsync<ChainGapException>(diff);

        Assert.Equal(ErrorCategory.Refused, e.Category);
        Assert.Equal(
            "cannot apply the differential stream 'virtbackup-chain-a-0003' (chain 'chain-a', parent 'virtbackup-chain-a-0001', "
            + $"taken {StreamFixturesTime}): a differential applies only on its chain's full 'virtbackup-chain-a-0001', but 'win11' was restored up to "
            + $"checkpoint 'virtbackup-chain-a-0002' of chain 'chain-a' (2 streams applied, the last taken {StreamFixturesTime}). "
            + "Restore the full stream again (with --force), then this differential, then the incrementals taken after it",
            e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_diff_without_a_restored_full_is_refused_and_an_incremental_from_before_the_diff_is_refused_after_it()
    {
        using var tree = new RestoredTree();
        var (full, inc, diff) = ChainFixtures.FullIncAndDiff();
        var diffStream = await ChainFixtures.BuildAsync(diff);

        var missing = await Assert.ThrowsAsync<ChainGapException>(() => tree.RestoreAsync(diffStream));
        await tree.RestoreAsync(full);
        await tree.RestoreAsync(diffStream);
        var stale = await Assert.ThrowsAsync<ChainGapException>(async () =>
            await tree.RestoreAsync(ChainFixtures.Next(inc, 4, 300)));

        Assert.StartsWith("cannot apply the differential stream 'virtbackup-chain-a-0003'", missing.Message);
        Assert.Contains("nothing was restored as 'win11'", missing.Message);
        Assert.Contains("it continues from checkpoint 'virtbackup-chain-a-0002', but the last checkpoint applied to 'win11' is 'virtbackup-chain-a-0003'", stale.Message);
    }

    private static string StreamFixturesTime => $"{StreamFixtures.FixedTime:u}";
}
