using VirtBackup.Core.Chain;
using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Chain;

/// <summary>
/// Independent chains of one domain (<c>backup --chain NAME</c>): each plans from its own state and checkpoints, and no
/// run of one removes a checkpoint another committed.
/// </summary>
public class NamedChainTests
{
    [Fact(Timeout = 10_000)]
    public async Task Interleaved_chains_each_continue_from_their_own_last_checkpoint_whatever_the_other_took_between()
    {
        using var scene = new ChainScene();
        var a1 = await scene.BackupAsync(RequestedLevel.Auto, "onsite");
        var b1 = await scene.BackupAsync(RequestedLevel.Auto, "offsite");
        var a2 = await scene.BackupAsync(RequestedLevel.Inc, "onsite");
        var b2 = await scene.BackupAsync(RequestedLevel.Inc, "offsite");
        var b3 = await scene.BackupAsync(RequestedLevel.Inc, "offsite");

        var a3 = await scene.BackupAsync(RequestedLevel.Inc, "onsite");

        Assert.Equal(
            [
                (BackupLevel.Full, ChainState.CheckpointName("onsite", a1.ChainId!, 1), (string?)null),
                (BackupLevel.Full, ChainState.CheckpointName("offsite", b1.ChainId!, 1), null),
                (BackupLevel.Inc, ChainState.CheckpointName("onsite", a1.ChainId!, 2), a1.Checkpoint),
                (BackupLevel.Inc, ChainState.CheckpointName("offsite", b1.ChainId!, 2), b1.Checkpoint),
                (BackupLevel.Inc, ChainState.CheckpointName("offsite", b1.ChainId!, 3), b2.Checkpoint),
                (BackupLevel.Inc, ChainState.CheckpointName("onsite", a1.ChainId!, 3), a2.Checkpoint),
            ],
            new[] { a1, b1, a2, b2, b3, a3 }.Select(p => (p.Level, p.Checkpoint!, p.Parent)));
        // The inc of onsite reads the bitmap of its own last checkpoint, which recorded every write since, and that
        // checkpoint is still there: no backup of offsite removed it.
        Assert.Equal(a2.Checkpoint, scene.Bitmaps.Checked[^1]);
        Assert.Empty(scene.Bitmaps.Deleted);
        Assert.Equal(new[] { a1, b1, a2, b2, b3, a3 }.Select(p => p.Checkpoint!), scene.Domain.CheckpointNames);
        Assert.Equal(["onsite", "onsite", "onsite"], new[] { a1, a2, a3 }.Select(p => p.Chain));
        Assert.Equal([a1.Checkpoint, a2.Checkpoint, a3.Checkpoint], scene.StoreOf("onsite").Load(scene.Domain.Uuid)!.Checkpoints.Select(c => c.Name));
        Assert.Equal([b1.Checkpoint, b2.Checkpoint, b3.Checkpoint], scene.StoreOf("offsite").Load(scene.Domain.Uuid)!.Checkpoints.Select(c => c.Name));
        Assert.Equal("offsite", scene.StoreOf("offsite").Load(scene.Domain.Uuid)!.Chain);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_full_of_one_chain_removes_its_own_old_checkpoints_and_state_and_keeps_every_checkpoint_of_the_other()
    {
        using var scene = new ChainScene();
        var a1 = await scene.BackupAsync(RequestedLevel.Full, "onsite");
        var b1 = await scene.BackupAsync(RequestedLevel.Full, "offsite");
        var a2 = await scene.BackupAsync(RequestedLevel.Inc, "onsite");
        var b2 = await scene.BackupAsync(RequestedLevel.Inc, "offsite");
        var onsite = File.ReadAllText(Path.Combine(scene.Store.DomainDirectory(scene.Domain.Uuid), "chain-onsite.json"));

        var b3 = await scene.BackupAsync(RequestedLevel.Full, "offsite");

        Assert.Equal([b2.Checkpoint!, b1.Checkpoint!], b3.OldChain!);
        Assert.Equal([b2.Checkpoint!, b1.Checkpoint!], scene.Bitmaps.Deleted);
        Assert.Equal([a1.Checkpoint!, a2.Checkpoint!, b3.Checkpoint!], scene.Domain.CheckpointNames);
        Assert.Equal(onsite, File.ReadAllText(Path.Combine(scene.Store.DomainDirectory(scene.Domain.Uuid), "chain-onsite.json")));
        Assert.Equal([b3.Checkpoint], scene.StoreOf("offsite").Load(scene.Domain.Uuid)!.Checkpoints.Select(c => c.Name));
        var next = await scene.PlannerOf("onsite").PlanAsync(RequestedLevel.Auto, ["vda"], CancellationToken.None);
        Assert.Equal((BackupLevel.Inc, a2.Checkpoint), (next.Level, next.Parent));
    }

    [Fact(Timeout = 10_000)]
    public async Task The_unnamed_chain_keeps_its_checkpoint_names_and_state_file_and_a_full_of_it_keeps_a_named_chain()
    {
        using var scene = new ChainScene();
        var named = await scene.BackupAsync(RequestedLevel.Full, "offsite");
        scene.Committed(2);

        var full = await scene.BackupAsync(RequestedLevel.Full, chain: null);

        Assert.Equal(ChainState.CheckpointName(full.ChainId!, 1), full.Checkpoint);
        Assert.Equal($"virtbackup-{full.ChainId}-0001", full.Checkpoint);
        Assert.Equal([ChainScene.Ours(2), ChainScene.Ours(1)], scene.Bitmaps.Deleted);
        Assert.Equal([named.Checkpoint!, full.Checkpoint!], scene.Domain.CheckpointNames);
        Assert.True(File.Exists(scene.StateFile));
        Assert.Null(scene.Store.Load(scene.Domain.Uuid)!.Chain);
        Assert.Equal([named.Checkpoint], scene.StoreOf("offsite").Load(scene.Domain.Uuid)!.Checkpoints.Select(c => c.Name));
    }

    [Fact(Timeout = 10_000)]
    public async Task Repair_removes_the_uncommitted_checkpoints_of_every_chain_and_keeps_the_committed_ones_of_both()
    {
        using var scene = new ChainScene();
        var a1 = await scene.BackupAsync(RequestedLevel.Full, "onsite");
        var b1 = await scene.BackupAsync(RequestedLevel.Full, "offsite");
        var a2 = await scene.BackupAsync(RequestedLevel.Inc, "onsite");
        var killedA = ChainState.CheckpointName("onsite", a1.ChainId!, 3);
        var killedB = ChainState.CheckpointName("offsite", b1.ChainId!, 2);
        scene.Domain.AddCheckpoint(killedA);
        scene.Domain.AddCheckpoint(killedB);

        // What RepairVerb does: the planner of the default store plans the cleanup of the whole domain.
        var cleanup = scene.Planner.PlanCleanup();
        var removed = await scene.Applier.CleanUpAsync(cleanup, CancellationToken.None);

        Assert.Equal([killedB, killedA], removed);
        Assert.Equal([a1.Checkpoint!, b1.Checkpoint!, a2.Checkpoint!], scene.Domain.CheckpointNames);
        Assert.Equal([b1.Checkpoint!, a1.Checkpoint!, a2.Checkpoint!], scene.Bitmaps.OrphanCheckWith!.Order(StringComparer.Ordinal));
        var next = await scene.PlannerOf("offsite").PlanAsync(RequestedLevel.Inc, ["vda"], CancellationToken.None);
        Assert.Equal((BackupLevel.Inc, b1.Checkpoint, (string?)null), (next.Level, next.Parent, next.Refusal));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_run_of_one_chain_removes_a_checkpoint_a_killed_run_of_another_left_but_none_that_chain_committed()
    {
        using var scene = new ChainScene();
        var b1 = await scene.BackupAsync(RequestedLevel.Full, "offsite");
        var killedB = ChainState.CheckpointName("offsite", b1.ChainId!, 2);
        scene.Domain.AddCheckpoint(killedB);

        var a1 = await scene.BackupAsync(RequestedLevel.Auto, "onsite");

        Assert.Equal([killedB], a1.Cleanup.Uncommitted);
        Assert.Equal([b1.Checkpoint!, a1.Checkpoint!], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task Another_chain_whose_state_is_unreadable_keeps_all_its_checkpoints_and_the_run_says_so()
    {
        using var scene = new ChainScene();
        var b1 = await scene.BackupAsync(RequestedLevel.Full, "offsite");
        var b2 = ChainState.CheckpointName("offsite", b1.ChainId!, 2);
        scene.Domain.AddCheckpoint(b2);
        File.WriteAllText(Path.Combine(scene.Store.DomainDirectory(scene.Domain.Uuid), "chain-offsite.json"), "{ damaged");

        var a1 = await scene.BackupAsync(RequestedLevel.Full, "onsite");

        Assert.Empty(a1.Cleanup.Uncommitted);
        Assert.Equal([b1.Checkpoint!, b2, a1.Checkpoint!], scene.Domain.CheckpointNames);
        Assert.Contains("Warning the state of \"chain 'offsite'\" of \"vm1\" is unreadable: its checkpoints are left alone", scene.Log.Lines);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_incremental_of_a_chain_that_has_no_full_yet_is_refused_naming_the_chain()
    {
        using var scene = new ChainScene();
        scene.Committed(1);

        var e = await Assert.ThrowsAsync<ChainStateException>(() => scene.BackupAsync(RequestedLevel.Inc, "offsite"));

        Assert.Equal(
            "cannot make an incremental backup of 'vm1' in chain 'offsite': there is no chain yet. Run a full backup (--level full or auto)",
            e.Message);
        Assert.Equal([ChainScene.Ours(1)], scene.Domain.CheckpointNames);
    }

    [Theory]
    [InlineData("virtbackup-0123456789ab-0001", null)]
    [InlineData("virtbackup-0123456789ab-12345", null)]
    [InlineData("virtbackup-20261126T103000Z", null)]
    [InlineData("virtbackup-offsite-0123456789ab-0001", "offsite")]
    [InlineData("virtbackup-off-site-0123456789ab-0002", "off-site")]
    [InlineData("virtbackup-0123456789ab-0123456789ab-0001", "0123456789ab")]
    public void A_checkpoint_name_says_which_chain_it_belongs_to(string checkpoint, string? chain)
    {
        Assert.True(ChainState.BelongsTo(checkpoint, chain));
        Assert.Equal(chain is null, ChainState.BelongsTo(checkpoint, null));
        Assert.False(ChainState.BelongsTo(checkpoint, "off"));
        Assert.False(ChainState.BelongsTo("nightly-by-someone-else", chain));
    }

    [Theory]
    [InlineData("")]
    [InlineData("-offsite")]
    [InlineData("_offsite")]
    [InlineData("off site")]
    [InlineData("off/site")]
    [InlineData("off.site")]
    [InlineData("off~site")]
    [InlineData("off@site")]
    [InlineData("offsité")]
    [InlineData("a23456789012345678901234567890123")]
    public void A_chain_name_outside_the_safe_charset_is_refused_by_the_store(string chain)
    {
        Assert.False(ChainName.IsValid(chain));
        var e = Assert.Throws<ArgumentException>(() => new ChainStore("/nonexistent", chain));
        Assert.StartsWith($"'{chain}' is not a chain name (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit)", e.Message);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("Offsite_2")]
    [InlineData("0-daily")]
    [InlineData("a2345678901234567890123456789012")]
    public void A_chain_name_of_letters_digits_underscores_and_dashes_up_to_32_is_accepted(string chain)
    {
        Assert.True(ChainName.IsValid(chain));
        Assert.Equal(chain, new ChainStore("/nonexistent", chain).Chain);
    }
}
