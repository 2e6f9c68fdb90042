using static VirtBackup.Tests.Chain.ChainScene;

namespace VirtBackup.Tests.Chain;

/// <summary>
/// <c>--level diff</c>: the changes since the chain's full, read from the full's bitmap, with a new checkpoint after the
/// chain's last one, so the next incremental follows the diff. The checkpoints in between stay (the chain's history).
/// </summary>
public class DiffPlannerTests
{
    [Fact(Timeout = 10_000)]
    public async Task A_diff_carries_the_changes_since_the_chains_full_checks_the_fulls_bitmap_and_keeps_the_checkpoints_in_between()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(3);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Diff);

        Assert.Equal((BackupLevel.Diff, ChainId, Ours(4), Ours(1)), (plan.Level, plan.ChainId, plan.Checkpoint, plan.Parent));
        Assert.Equal($"differential of chain {ChainId}: the changes since its full {Ours(1)}", plan.Reason);
        Assert.Equal((RequestedLevel.Diff, state.Checkpoints[2]), (plan.Requested, plan.Previous!.Last));
        Assert.Null(plan.Refusal);
        Assert.Null(plan.OldChain);
        Assert.Empty(plan.Redefinitions);
        Assert.Equal([Ours(1)], scene.Bitmaps.Checked);
        Assert.Equal([Ours(1), Ours(2), Ours(3)], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_committed_diff_is_recorded_as_diff_of_the_full_and_the_next_auto_backup_is_an_incremental_from_the_diff()
    {
        using var scene = new ChainScene();
        scene.Committed(2);
        var diff = await scene.PlanAndApplyAsync(RequestedLevel.Diff);
        scene.Domain.AddCheckpoint(diff.Checkpoint!);

        var state = scene.Applier.Commit(diff, ["vda"]);
        var next = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal(("diff", Ours(3), Ours(1)), (state.Checkpoints[2].Level, state.Checkpoints[2].Name, state.Checkpoints[2].Parent));
        Assert.Equal(["full", "inc", "diff"], scene.Store.Load(scene.Domain.Uuid)!.Checkpoints.Select(c => c.Level));
        Assert.Equal((BackupLevel.Inc, Ours(4), Ours(3)), (next.Level, next.Checkpoint, next.Parent));
        Assert.Equal([Ours(1), Ours(2), Ours(3)], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_right_after_the_full_and_a_second_diff_both_take_the_changes_since_the_full()
    {
        using var scene = new ChainScene();
        scene.Committed(1);
        var first = await scene.PlanAndApplyAsync(RequestedLevel.Diff);
        scene.Domain.AddCheckpoint(first.Checkpoint!);
        scene.Applier.Commit(first, ["vda"]);

        var second = await scene.PlanAndApplyAsync(RequestedLevel.Diff);

        Assert.Equal((BackupLevel.Diff, Ours(2), Ours(1)), (first.Level, first.Checkpoint, first.Parent));
        Assert.Equal((BackupLevel.Diff, Ours(3), Ours(1)), (second.Level, second.Checkpoint, second.Parent));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_asked_for_without_a_chain_is_refused_and_says_to_run_a_full()
    {
        using var scene = new ChainScene();

        var error = await Assert.ThrowsAsync<ChainStateException>(() => scene.PlanAndApplyAsync(RequestedLevel.Diff));

        Assert.Equal("cannot make a differential backup of 'vm1': there is no chain yet. Run a full backup (--level full or auto)", error.Message);
        Assert.Empty(scene.Domain.CheckpointNames);
        Assert.False(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_whose_full_has_a_broken_bitmap_is_refused_with_the_bitmaps_problem_and_the_chain_is_kept()
    {
        using var scene = new ChainScene();
        scene.Committed(2);
        scene.Bitmaps.Problem = $"bitmap '{Ours(1)}' of disk vda is disabled: it did not record every write since the checkpoint";

        var error = await Assert.ThrowsAsync<ChainStateException>(() => scene.PlanAndApplyAsync(RequestedLevel.Diff));

        Assert.Equal(
            $"cannot make a differential backup of 'vm1': bitmap '{Ours(1)}' of disk vda is disabled: it did not record every write since the checkpoint. Run a full backup (--level full or auto)",
            error.Message);
        Assert.Equal([Ours(1)], scene.Bitmaps.Checked);
        Assert.Equal([Ours(1), Ours(2)], scene.Domain.CheckpointNames);
        Assert.True(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_of_a_chain_whose_disk_set_changed_is_refused()
    {
        using var scene = new ChainScene();
        scene.Committed(2);

        var error = await Assert.ThrowsAsync<ChainStateException>(() => scene.PlanAndApplyAsync(RequestedLevel.Diff, "vda", "vdb"));

        Assert.Equal(
            "cannot make a differential backup of 'vm1': the disk set changed (vda then, vda,vdb now). Run a full backup (--level full or auto)",
            error.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_diff_redefines_every_checkpoint_libvirt_lost_parents_first_before_it_begins()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(3, inLibvirt: false);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Diff);

        Assert.Equal(state.Checkpoints, plan.Redefinitions);
        Assert.Equal((BackupLevel.Diff, Ours(4), Ours(1)), (plan.Level, plan.Checkpoint, plan.Parent));
        Assert.Equal([Ours(1), Ours(2), Ours(3)], scene.Domain.CheckpointNames);
    }
}
