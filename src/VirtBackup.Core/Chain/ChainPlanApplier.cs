using Serilog;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Carries out a <see cref="ChainPlan"/> among libvirt's checkpoints (the caller runs it after planning, before the VM
/// is touched), and advances the chain once a stream is complete. <paramref name="bitmaps"/> removes checkpoints the way
/// the domain's state needs (libvirt for a running domain, virtbackup on the images for a shut-off one).
/// </summary>
public sealed class ChainPlanApplier(IDomain domain, ChainStore store, ICheckpointBitmaps bitmaps, ILogger log)
{
    /// <summary>
    /// In this order: the cleanup; the refusal, if the plan is one (<see cref="ChainStateException"/>); the
    /// redefinitions; the old chain and the chain state, for a new chain. Returns the plan the backup follows: this one,
    /// or a new chain's when libvirt refused to redefine a checkpoint the incremental needed.
    /// </summary>
    public async Task<ChainPlan> ApplyAsync(ChainPlan plan, CancellationToken cancellationToken)
    {
        await CleanUpAsync(plan.Cleanup, cancellationToken);
        if (Redefine(plan) is { } problem)
        {
            plan = ChainPlanner.NewChain(
                plan.Requested, domain.Name, plan.Chain, plan.Cleanup, ChainPlanner.OldChain(domain.ListCheckpoints(), ChainCleanup.None, plan.Chain), problem);
        }

        if (plan.Refusal is { } refusal)
        {
            throw new ChainStateException(refusal);
        }

        if (plan.OldChain is { } oldChain)
        {
            foreach (var name in oldChain)
            {
                await bitmaps.DeleteAsync(name, cancellationToken);
                log.Information("removed checkpoint {Checkpoint} of {Domain}: a full backup starts a new chain", name, domain.Name);
            }

            store.Delete(domain.Uuid);
        }

        return plan;
    }

    /// <summary>Removes the uncommitted checkpoints, then the orphan bitmaps; returns the names of both.</summary>
    public async Task<IReadOnlyList<string>> CleanUpAsync(ChainCleanup cleanup, CancellationToken cancellationToken)
    {
        var removed = new List<string>();
        foreach (var name in cleanup.Uncommitted)
        {
            await bitmaps.DeleteAsync(name, cancellationToken);
            log.Warning("removed checkpoint {Checkpoint} of {Domain}: no completed stream carried it", name, domain.Name);
            removed.Add(name);
        }

        foreach (var orphan in await bitmaps.RemoveOrphanBitmapsAsync(cleanup.Committed, cancellationToken))
        {
            log.Warning("removed bitmap {Bitmap} from the disks of {Domain}: an interrupted run added it, no checkpoint names it", orphan, domain.Name);
            removed.Add(orphan);
        }

        return removed;
    }

    /// <summary>The chain state after a completed stream that created <paramref name="plan"/>'s checkpoint; saved.</summary>
    public ChainState Commit(ChainPlan plan, IReadOnlyList<string> bitmapDisks)
    {
        var checkpoint = new CommittedCheckpoint(
            plan.Checkpoint!,
            plan.Parent,
            ChainState.LevelOf(plan.Level),
            DateTimeOffset.UtcNow,
            domain.CheckpointGetXml(plan.Checkpoint!));
        var state = plan.Previous is { } previous
            ? previous with { Checkpoints = [.. previous.Checkpoints, checkpoint] }
            : new ChainState(domain.Uuid, domain.Name, plan.ChainId!, bitmapDisks, [checkpoint]) { Chain = plan.Chain };
        store.Save(state);
        return state;
    }

    /// <summary>libvirt lost the checkpoint metadata (domain undefined and defined again): redefine it. Returns why that failed, or null.</summary>
    private string? Redefine(ChainPlan plan)
    {
        try
        {
            foreach (var checkpoint in plan.Redefinitions)
            {
                domain.CheckpointCreate(checkpoint.Xml, bitmaps.RedefineFlags);
                log.Information("redefined checkpoint {Checkpoint} of {Domain} from the saved chain state", checkpoint.Name, domain.Name);
            }

            return null;
        }
        catch (LibvirtException e)
        {
            return $"libvirt lost checkpoint {plan.Previous!.Last!.Name} and it cannot be redefined ({e.LibvirtMessage})";
        }
    }
}
