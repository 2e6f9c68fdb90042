using Serilog;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Decides the level of a backup and prepares libvirt's checkpoints for it, before the VM is touched:
/// removes checkpoints of ours that no completed stream carried, redefines committed ones libvirt lost
/// (a redefined domain), and for a full backup removes the old chain (only checkpoints virtbackup made).
/// </summary>
public sealed class ChainPlanner(Domain domain, ChainStore store, ILogger log)
{
    /// <param name="bitmapDisks">The disks of this backup that carry bitmaps (qcow2), in order.</param>
    public ChainPlan Plan(RequestedLevel requested, IReadOnlyList<string> bitmapDisks)
    {
        var state = Load();
        RemoveUncommitted(state);
        if (requested == RequestedLevel.Copy)
        {
            return new ChainPlan(BackupLevel.Copy, state?.ChainId, null, null, null, "copy requested: no checkpoint, the chain is left as it is");
        }

        var problem = requested == RequestedLevel.Full ? "full requested" : ChainProblem(state, bitmapDisks);
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

        RemoveChain();
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
    private string? ChainProblem(ChainState? state, IReadOnlyList<string> bitmapDisks)
    {
        if (state?.Last is null)
        {
            return "there is no chain yet";
        }

        if (!state.Disks.SequenceEqual(bitmapDisks))
        {
            return $"the disk set changed ({string.Join(",", state.Disks)} then, {string.Join(",", bitmapDisks)} now)";
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
                domain.CheckpointCreateXml(checkpoint.Xml, CheckpointCreateFlags.Redefine | CheckpointCreateFlags.RedefineValidate).Dispose();
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
    public IReadOnlyList<string> RemoveUncommitted() => RemoveUncommitted(Load());

    private IReadOnlyList<string> RemoveUncommitted(ChainState? state)
    {
        var committed = state?.Checkpoints.Select(c => c.Name).ToHashSet() ?? [];
        var removed = domain.ListCheckpoints().Reverse().Where(n => ChainState.IsOurs(n) && !committed.Contains(n)).ToList();
        foreach (var name in removed)
        {
            domain.CheckpointDelete(name);
            log.Warning("removed checkpoint {Checkpoint} of {Domain}: no completed stream carried it", name, domain.Name);
        }

        return removed;
    }

    private void RemoveChain()
    {
        foreach (var name in domain.ListCheckpoints().Reverse().Where(ChainState.IsOurs))
        {
            domain.CheckpointDelete(name);
            log.Information("removed checkpoint {Checkpoint} of {Domain}: a full backup starts a new chain", name, domain.Name);
        }

        store.Delete(domain.Uuid);
    }
}
