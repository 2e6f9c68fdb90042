using static VirtBackup.Tests.Chain.ChainScene;

namespace VirtBackup.Tests.Chain;

/// <summary>
/// The planner decides the level and what must change among the checkpoints, and changes nothing: every libvirt call
/// it makes is a read. What it decides is carried out by <see cref="ChainPlanApplier"/>, tested with it here.
/// </summary>
public class ChainPlannerTests
{
    [Fact(Timeout = 10_000)]
    public async Task A_first_auto_backup_plans_a_full_of_a_new_chain_with_only_reads()
    {
        using var scene = new ChainScene();
        scene.Domain.AddCheckpoint(Foreign);

        var plan = await scene.Planner.PlanAsync(RequestedLevel.Auto, ["vda"], CancellationToken.None);

        Assert.Equal(BackupLevel.Full, plan.Level);
        Assert.Equal($"new chain {plan.ChainId}: there is no chain yet", plan.Reason);
        Assert.Equal(Ours(1, plan.ChainId!), plan.Checkpoint);
        Assert.Null(plan.Parent);
        Assert.Empty(plan.Cleanup.Uncommitted);
        Assert.Equal([], plan.OldChain);
        Assert.Null(plan.Refusal);
        Assert.Equal(["virDomainListAllCheckpoints"], scene.Domain.Calls);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_auto_backup_continues_the_chain_from_its_last_committed_checkpoint()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(2);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal(BackupLevel.Inc, plan.Level);
        Assert.Equal($"continuing chain {ChainId} from {Ours(2)}", plan.Reason);
        Assert.Equal((ChainId, Ours(3), Ours(2)), (plan.ChainId, plan.Checkpoint, plan.Parent));
        Assert.Equal(state.Checkpoints[1], plan.Previous!.Last);
        Assert.Null(plan.OldChain);
        Assert.Empty(plan.Redefinitions);
        Assert.Equal([Ours(1), Ours(2)], scene.Domain.CheckpointNames);
        Assert.Equal(["virDomainListAllCheckpoints"], scene.Domain.Calls);
    }

    [Fact(Timeout = 10_000)]
    public async Task Uncommitted_checkpoints_of_ours_are_planned_for_removal_children_first_and_removed_only_by_the_applier()
    {
        using var scene = new ChainScene();
        scene.Domain.AddCheckpoint(Foreign);
        scene.Committed(1);
        scene.Domain.AddCheckpoint(Ours(2));
        scene.Domain.AddCheckpoint(Ours(3));
        scene.Bitmaps.Orphans.Add(Ours(9));

        var plan = await scene.Planner.PlanAsync(RequestedLevel.Auto, ["vda"], CancellationToken.None);
        Assert.Equal([Ours(3), Ours(2)], plan.Cleanup.Uncommitted);
        Assert.Equal([Foreign, Ours(1), Ours(2), Ours(3)], scene.Domain.CheckpointNames);

        var applied = await scene.Applier.ApplyAsync(plan, CancellationToken.None);

        Assert.Same(plan, applied);
        Assert.Equal((BackupLevel.Inc, Ours(2), Ours(1)), (plan.Level, plan.Checkpoint, plan.Parent));
        Assert.Equal([Foreign, Ours(1)], scene.Domain.CheckpointNames);
        Assert.Equal([Ours(1)], scene.Bitmaps.OrphanCheckWith!.Order());
        Assert.Equal(
        [
            $"Warning removed checkpoint \"{Ours(3)}\" of \"vm1\": no completed stream carried it",
            $"Warning removed checkpoint \"{Ours(2)}\" of \"vm1\": no completed stream carried it",
            $"Warning removed bitmap \"{Ours(9)}\" from the disks of \"vm1\": an interrupted run added it, no checkpoint names it",
        ], scene.Log.Lines);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_changed_disk_set_starts_a_new_chain_that_removes_the_old_one_and_its_state_but_no_foreign_checkpoint()
    {
        using var scene = new ChainScene();
        scene.Domain.AddCheckpoint(Foreign);
        scene.Committed(2);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto, "vda", "vdb");

        Assert.Equal(BackupLevel.Full, plan.Level);
        Assert.Equal($"new chain {plan.ChainId}: the disk set changed (vda then, vda,vdb now)", plan.Reason);
        Assert.NotEqual(ChainId, plan.ChainId);
        Assert.Equal([Ours(2), Ours(1)], plan.OldChain);
        Assert.Equal([Foreign], scene.Domain.CheckpointNames);
        Assert.False(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_full_backup_asked_for_removes_the_whole_chain_even_when_it_could_continue()
    {
        using var scene = new ChainScene();
        scene.Committed(3);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Full);

        Assert.Equal((BackupLevel.Full, $"new chain {plan.ChainId}: full requested"), (plan.Level, plan.Reason));
        Assert.Equal([Ours(3), Ours(2), Ours(1)], scene.Bitmaps.Deleted);
        Assert.Empty(scene.Domain.CheckpointNames);
        Assert.Null(scene.Store.Load(scene.Domain.Uuid));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_copy_makes_no_checkpoint_and_leaves_the_chain_but_still_removes_uncommitted_ones()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(1);
        scene.Domain.AddCheckpoint(Ours(2));

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Copy);

        Assert.Equal((BackupLevel.Copy, ChainId, null, null, null, "copy requested: no checkpoint, the chain is left as it is"),
            (plan.Level, plan.ChainId, plan.Checkpoint, plan.Parent, plan.Previous, plan.Reason));
        Assert.Null(plan.OldChain);
        Assert.Equal([Ours(1)], scene.Domain.CheckpointNames);
        Assert.Equal(state.Checkpoints, scene.Store.Load(scene.Domain.Uuid)!.Checkpoints);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_incremental_asked_for_without_a_chain_is_refused_after_the_cleanup_and_nothing_else_changes()
    {
        using var scene = new ChainScene();
        scene.Domain.AddCheckpoint(Foreign);
        scene.Domain.AddCheckpoint(Ours(1));

        var plan = await scene.Planner.PlanAsync(RequestedLevel.Inc, ["vda"], CancellationToken.None);
        const string refusal = "cannot make an incremental backup of 'vm1': there is no chain yet. Run a full backup (--level full or auto)";
        Assert.Equal(refusal, plan.Refusal);
        Assert.Equal([Foreign, Ours(1)], scene.Domain.CheckpointNames);

        var error = await Assert.ThrowsAsync<ChainStateException>(() => scene.Applier.ApplyAsync(plan, CancellationToken.None));

        Assert.Equal(refusal, error.Message);
        Assert.Equal([Foreign], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task Broken_bitmaps_turn_an_auto_backup_into_a_full_that_says_why()
    {
        using var scene = new ChainScene();
        scene.Committed(2);
        scene.Bitmaps.Problem = "bitmap 'x' of disk vda is marked in-use";

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal((BackupLevel.Full, $"new chain {plan.ChainId}: bitmap 'x' of disk vda is marked in-use"), (plan.Level, plan.Reason));
        Assert.Empty(scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_unreadable_chain_state_costs_only_the_incremental()
    {
        using var scene = new ChainScene();
        scene.Committed(1);
        File.WriteAllText(scene.StateFile, "{ not json");

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal((BackupLevel.Full, $"new chain {plan.ChainId}: there is no chain yet"), (plan.Level, plan.Reason));
        Assert.Equal([Ours(1)], plan.Cleanup.Uncommitted);
        Assert.Empty(scene.Domain.CheckpointNames);
        Assert.StartsWith($"Warning \"chain state '{scene.StateFile}' is unreadable", scene.Log.Lines[0]);
    }

    [Fact(Timeout = 10_000)]
    public async Task Checkpoints_libvirt_lost_are_redefined_from_the_saved_state_parents_first_and_the_chain_continues()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(2, inLibvirt: false);

        var plan = await scene.Planner.PlanAsync(RequestedLevel.Auto, ["vda"], CancellationToken.None);
        Assert.Equal(state.Checkpoints, plan.Redefinitions);
        Assert.Empty(scene.Domain.CheckpointNames);

        var applied = await scene.Applier.ApplyAsync(plan, CancellationToken.None);

        Assert.Same(plan, applied);
        Assert.Equal((BackupLevel.Inc, Ours(3), Ours(2)), (plan.Level, plan.Checkpoint, plan.Parent));
        Assert.Equal([Ours(1), Ours(2)], scene.Domain.CheckpointNames);
        Assert.Equal(state.Checkpoints[1].Xml, scene.Domain.CheckpointGetXml(Ours(2)));
    }

    [Fact(Timeout = 10_000)]
    public async Task Nothing_is_redefined_while_libvirt_still_has_the_last_checkpoint()
    {
        using var scene = new ChainScene();
        var state = scene.Committed(2, inLibvirt: false);
        scene.Domain.AddCheckpoint(Ours(2), state.Checkpoints[1].Xml);

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal((BackupLevel.Inc, Ours(3), Ours(2)), (plan.Level, plan.Checkpoint, plan.Parent));
        Assert.Empty(plan.Redefinitions);
        Assert.Equal([Ours(2)], scene.Domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_checkpoint_libvirt_refuses_to_redefine_starts_a_new_chain_and_removes_what_was_redefined()
    {
        using var scene = new ChainScene();
        scene.Committed(2, inLibvirt: false);
        // The first redefinition works, the second fails.
        scene.Domain.Before("virDomainCheckpointCreateXML", () => scene.Domain.Before("virDomainCheckpointCreateXML", () => scene.Domain.Fail(
            "virDomainCheckpointCreateXML", LibvirtErrorCode.CheckpointInconsistent, "checkpoint inconsistent: missing or broken bitmap 'x' for disk 'vda'")));

        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);

        Assert.Equal(BackupLevel.Full, plan.Level);
        Assert.Equal(
            $"new chain {plan.ChainId}: libvirt lost checkpoint {Ours(2)} and it cannot be redefined (checkpoint inconsistent: missing or broken bitmap 'x' for disk 'vda')",
            plan.Reason);
        Assert.Equal(2, scene.Domain.Calls.Count(c => c == "virDomainCheckpointCreateXML"));
        Assert.Equal([Ours(1)], scene.Bitmaps.Deleted);
        Assert.Empty(scene.Domain.CheckpointNames);
        Assert.False(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_checkpoint_libvirt_refuses_to_redefine_refuses_an_incremental_asked_for_and_keeps_the_chain_state()
    {
        using var scene = new ChainScene();
        scene.Committed(1, inLibvirt: false);
        scene.Domain.Fail("virDomainCheckpointCreateXML", LibvirtErrorCode.OperationFailed, "operation failed: bitmap not found");

        var error = await Assert.ThrowsAsync<ChainStateException>(() => scene.PlanAndApplyAsync(RequestedLevel.Inc));

        Assert.Equal(
            $"cannot make an incremental backup of 'vm1': libvirt lost checkpoint {Ours(1)} and it cannot be redefined (operation failed: bitmap not found). Run a full backup (--level full or auto)",
            error.Message);
        Assert.True(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_removal_libvirt_refuses_stops_the_apply_with_libvirts_error_before_the_chain_state_goes()
    {
        using var scene = new ChainScene();
        scene.Committed(2);
        scene.Domain.Before("virDomainCheckpointDelete", () => scene.Domain.Fail(
            "virDomainCheckpointDelete", LibvirtErrorCode.OperationFailed, "operation failed: domain moment virtbackup-x is in use"));

        var error = await Assert.ThrowsAsync<LibvirtException>(() => scene.PlanAndApplyAsync(RequestedLevel.Full));

        Assert.Equal((LibvirtErrorCode.OperationFailed, "virDomainCheckpointDelete"), (error.Code, error.Operation));
        Assert.Equal([Ours(1), Ours(2)], scene.Domain.CheckpointNames);
        Assert.True(File.Exists(scene.StateFile));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_commit_records_the_checkpoint_with_the_xml_libvirt_gives_and_a_vanished_domain_records_nothing()
    {
        using var scene = new ChainScene();
        scene.Committed(1);
        var plan = await scene.PlanAndApplyAsync(RequestedLevel.Auto);
        scene.Domain.AddCheckpoint(plan.Checkpoint!, "<domaincheckpoint><name>as libvirt says</name></domaincheckpoint>");

        var state = scene.Applier.Commit(plan, ["vda"]);

        Assert.Equal([Ours(1), Ours(2)], state.Checkpoints.Select(c => c.Name));
        Assert.Equal(("inc", Ours(1), "<domaincheckpoint><name>as libvirt says</name></domaincheckpoint>"),
            (state.Checkpoints[1].Level, state.Checkpoints[1].Parent, state.Checkpoints[1].Xml));
        Assert.Equal(state.Checkpoints, scene.Store.Load(scene.Domain.Uuid)!.Checkpoints);

        var next = await scene.PlanAndApplyAsync(RequestedLevel.Auto);
        scene.Domain.Vanish();
        var error = Assert.Throws<DomainNotFoundException>(() => scene.Applier.Commit(next, ["vda"]));
        Assert.Equal(LibvirtErrorCode.NoDomain, error.Code);
        Assert.Equal(2, scene.Store.Load(scene.Domain.Uuid)!.Checkpoints.Count);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_repair_cleanup_removes_uncommitted_checkpoints_and_orphan_bitmaps_and_says_which()
    {
        using var scene = new ChainScene();
        scene.Domain.AddCheckpoint(Foreign);
        scene.Committed(1);
        scene.Domain.AddCheckpoint(Ours(2));
        scene.Bitmaps.Orphans.Add(Ours(7));

        var cleanup = scene.Planner.PlanCleanup();
        var removed = await scene.Applier.CleanUpAsync(cleanup, CancellationToken.None);

        Assert.Equal([Ours(2), Ours(7)], removed);
        Assert.Equal([Foreign, Ours(1)], scene.Domain.CheckpointNames);
        Assert.Empty(await scene.Applier.CleanUpAsync(scene.Planner.PlanCleanup(), CancellationToken.None));
    }
}
