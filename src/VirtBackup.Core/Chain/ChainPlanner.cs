using Serilog;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Decides the level of a backup and prepares libvirt's checkpoints for it, before the VM is touched:
/// removes checkpoints of ours that no completed stream carried, redefines committed ones libvirt lost
/// (a redefined domain), and for a full backup removes the old chain (only checkpoints virtbackup made).
/// <paramref name="bitmaps"/> says how checkpoints are checked and removed: by libvirt for a running domain, by
/// virtbackup on the images for a shut-off one.
/// </summary>
public sealed class ChainPlanner(Domain domain, ChainStore store, ICheckpointBitmaps bitmaps, ILogger log)
{
    /// <param name="bitmapDisks">The disks of this backup that carry bitmaps (qcow2), in order.</param>
    public async Task<ChainPlan> PlanAsync(RequestedLevel requested, IReadOnlyList<string> bitmapDisks, CancellationToken cancellationToken)
    {
        var state = Load();
        await RemoveUncommittedAsync(state, cancellationToken);
        if (requested == RequestedLevel.Copy)
        {
            return new ChainPlan(BackupLevel.Copy, state?.ChainId, null, null, null, "copy requested: no checkpoint, the chain is left as it is");
        }

        var problem = requested == RequestedLevel.Full ? "full requested" : await ChainProblemAsync(state, bitmapDisks, cancellationToken);
        if (problem is null)
        {
            var last = state!.Last!;
            var name = ChainState.CheckpointName(state.ChainId, state.Checkpoints.Count + 1);
            return new ChainPlan(BackupLevel.Inc, state.ChainId, name, last.Name, state, $"continuing chain {state.ChainId} from {last.Name}");
        }

        if (requested == RequestedLevel.Inc)
        {
            throw new ChainStateException($"cannot make an incremental backup of '{domain.Name}': {problem}. Run a full backup (--level full or auto)");
        }

        await RemoveChainAsync(cancellationToken);
        var chainId = ChainState.NewChainId();
        return new ChainPlan(BackupLevel.Full, chainId, ChainState.CheckpointName(chainId, 1), null, null, $"new chain {chainId}: {problem}");
    }

    /// <summary>The chain state after a completed stream that created <paramref name="plan"/>'s checkpoint.</summary>
    public ChainState Commit(ChainPlan plan, IReadOnlyList<string> bitmapDisks)
    {
        var checkpoint = new CommittedCheckpoint(
            plan.Checkpoint!,
            plan.Parent,
            plan.Level == BackupLevel.Full ? "full" : "inc",
            DateTimeOffset.UtcNow,
            domain.CheckpointGetXml(plan.Checkpoint!));
        var state = plan.Previous is { } previous
            ? previous with { Checkpoints = [.. previous.Checkpoints, checkpoint] }
            : new ChainState(domain.Uuid, domain.Name, plan.ChainId!, bitmapDisks, [checkpoint]);
        store.Save(state);
        return state;
    }

    private ChainState? Load()
    {
        try
        {
            return store.Load(domain.Uuid);
        }
        catch (ChainStateException e)
        {
            log.Warning("{Message}", e.Message);
            return null;
        }
    }

    /// <summary>Why the chain cannot continue, or null when an incremental is possible.</summary>
    private async Task<string?> ChainProblemAsync(ChainState? state, IReadOnlyList<string> bitmapDisks, CancellationToken cancellationToken)
    {
        if (state?.Last is null)
        {
            return "there is no chain yet";
        }

        if (!state.Disks.SequenceEqual(bitmapDisks))
        {
            return $"the disk set changed ({string.Join(",", state.Disks)} then, {string.Join(",", bitmapDisks)} now)";
        }

        if (await bitmaps.ProblemAsync(state.Last.Name, cancellationToken) is { } broken)
        {
            return broken;
        }

        var existing = domain.ListCheckpoints();
        if (!existing.Contains(state.Last.Name))
        {
            return Redefine(state);
        }

        return null;
    }

    /// <summary>libvirt lost the checkpoint metadata (domain undefined and defined again): redefine it.</summary>
    private string? Redefine(ChainState state)
    {
        try
        {
            var existing = domain.ListCheckpoints();
            foreach (var checkpoint in state.Checkpoints.Where(c => !existing.Contains(c.Name)))
            {
                domain.CheckpointCreateXml(checkpoint.Xml, bitmaps.RedefineFlags).Dispose();
                log.Information("redefined checkpoint {Checkpoint} of {Domain} from the saved chain state", checkpoint.Name, domain.Name);
            }

            return null;
        }
        catch (LibvirtException e)
        {
            return $"libvirt lost checkpoint {state.Last!.Name} and it cannot be redefined ({e.LibvirtMessage})";
        }
    }

    /// <summary>Removes checkpoints of ours that no completed stream carried (left by a killed run); returns their names.</summary>
    public Task<IReadOnlyList<string>> RemoveUncommittedAsync(CancellationToken cancellationToken) => RemoveUncommittedAsync(Load(), cancellationToken);

    private async Task<IReadOnlyList<string>> RemoveUncommittedAsync(ChainState? state, CancellationToken cancellationToken)
    {
        var committed = state?.Checkpoints.Select(c => c.Name).ToHashSet() ?? [];
        var removed = domain.ListCheckpoints().Reverse().Where(n => ChainState.IsOurs(n) && !committed.Contains(n)).ToList();
        foreach (var name in removed)
        {
            await bitmaps.DeleteAsync(name, cancellationToken);
            log.Warning("removed checkpoint {Checkpoint} of {Domain}: no completed stream carried it", name, domain.Name);
        }

        foreach (var orphan in await bitmaps.RemoveOrphanBitmapsAsync(committed, cancellationToken))
        {
            log.Warning("removed bitmap {Bitmap} from the disks of {Domain}: an interrupted run added it, no checkpoint names it", orphan, domain.Name);
            removed.Add(orphan);
        }

        return removed;
    }

    private async Task RemoveChainAsync(CancellationToken cancellationToken)
    {
        foreach (var name in domain.ListCheckpoints().Reverse().Where(ChainState.IsOurs))
        {
            await bitmaps.DeleteAsync(name, cancellationToken);
            log.Information("removed checkpoint {Checkpoint} of {Domain}: a full backup starts a new chain", name, domain.Name);
        }

        store.Delete(domain.Uuid);
    }
}
