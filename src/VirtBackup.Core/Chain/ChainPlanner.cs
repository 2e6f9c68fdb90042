using Serilog;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Decides the level of a backup and what must change among libvirt's checkpoints for it, before the VM is touched:
/// checkpoints of ours that no completed stream carried go, committed ones libvirt lost (a redefined domain) are
/// redefined, and for a full backup the old chain goes (only checkpoints virtbackup made). It only reads (the chain
/// state, libvirt's checkpoints, the bitmaps through <paramref name="bitmaps"/>); <see cref="ChainPlanApplier"/> makes
/// the changes. <paramref name="bitmaps"/> says how checkpoints are checked: by libvirt for a running domain, by
/// virtbackup on the images for a shut-off one.
/// </summary>
public sealed class ChainPlanner(IDomain domain, ChainStore store, ICheckpointBitmaps bitmaps, ILogger log)
{
    /// <param name="bitmapDisks">The disks of this backup that carry bitmaps (qcow2), in order.</param>
    public async Task<ChainPlan> PlanAsync(RequestedLevel requested, IReadOnlyList<string> bitmapDisks, CancellationToken cancellationToken)
    {
        var state = Load();
        var existing = domain.ListCheckpoints();
        var cleanup = CleanupOf(state, existing);
        if (requested == RequestedLevel.Copy)
        {
            return new ChainPlan(BackupLevel.Copy, state?.ChainId, null, null, null, "copy requested: no checkpoint, the chain is left as it is")
            {
                Requested = requested,
                Cleanup = cleanup,
            };
        }

        var diff = requested == RequestedLevel.Diff;
        var problem = requested == RequestedLevel.Full ? "full requested" : await ChainProblemAsync(state, diff, bitmapDisks, cancellationToken);
        if (problem is null)
        {
            var last = state!.Last!;
            // A diff carries the changes since the chain's full: libvirt reads them from the full's bitmap, which records
            // every write since (all of a chain's bitmaps stay enabled); the checkpoints in between stay, the chain's history.
            var parent = diff ? state.Full! : last;
            var name = ChainState.CheckpointName(state.ChainId, state.Checkpoints.Count + 1);
            var reason = diff
                ? $"differential of chain {state.ChainId}: the changes since its full {parent.Name}"
                : $"continuing chain {state.ChainId} from {last.Name}";
            return new ChainPlan(diff ? BackupLevel.Diff : BackupLevel.Inc, state.ChainId, name, parent.Name, state, reason)
            {
                Requested = requested,
                Cleanup = cleanup,
                // libvirt lost the chain's metadata when it lost the last checkpoint's (a domain undefined and defined again).
                Redefinitions = existing.Contains(last.Name) && existing.Contains(parent.Name)
                    ? []
                    : [.. state.Checkpoints.Where(c => !existing.Contains(c.Name))],
            };
        }

        return NewChain(requested, domain.Name, cleanup, OldChain(existing, cleanup), problem);
    }

    /// <summary>Only the cleanup: what <c>repair</c> removes.</summary>
    public ChainCleanup PlanCleanup() => CleanupOf(Load(), domain.ListCheckpoints());

    /// <summary>
    /// A new chain because of <paramref name="problem"/>, after <paramref name="cleanup"/>; removing
    /// <paramref name="oldChain"/> first. When an incremental or differential was asked for, the refusal instead.
    /// </summary>
    public static ChainPlan NewChain(
        RequestedLevel requested, string domainName, ChainCleanup cleanup, IReadOnlyList<string> oldChain, string problem)
    {
        if (requested is RequestedLevel.Inc or RequestedLevel.Diff)
        {
            var what = requested == RequestedLevel.Inc ? "an incremental" : "a differential";
            return new ChainPlan(requested == RequestedLevel.Inc ? BackupLevel.Inc : BackupLevel.Diff, null, null, null, null, problem)
            {
                Requested = requested,
                Cleanup = cleanup,
                Refusal = $"cannot make {what} backup of '{domainName}': {problem}. Run a full backup (--level full or auto)",
            };
        }

        var chainId = ChainState.NewChainId();
        return new ChainPlan(BackupLevel.Full, chainId, ChainState.CheckpointName(chainId, 1), null, null, $"new chain {chainId}: {problem}")
        {
            Requested = requested,
            Cleanup = cleanup,
            OldChain = oldChain,
        };
    }

    /// <summary>The checkpoints of ours among <paramref name="existing"/> (parents first) that the cleanup leaves, children first.</summary>
    public static IReadOnlyList<string> OldChain(IReadOnlyList<string> existing, ChainCleanup cleanup) =>
        [.. existing.Reverse().Where(n => ChainState.IsOurs(n) && !cleanup.Uncommitted.Contains(n))];

    private static ChainCleanup CleanupOf(ChainState? state, IReadOnlyList<string> existing)
    {
        var committed = state?.Checkpoints.Select(c => c.Name).ToHashSet() ?? [];
        return new ChainCleanup([.. existing.Reverse().Where(n => ChainState.IsOurs(n) && !committed.Contains(n))], committed);
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

    /// <summary>
    /// Why the chain cannot continue, or null when an incremental (a <paramref name="diff"/>: a differential) is possible
    /// (perhaps after redefinitions).
    /// </summary>
    private async Task<string?> ChainProblemAsync(ChainState? state, bool diff, IReadOnlyList<string> bitmapDisks, CancellationToken cancellationToken)
    {
        if (state?.Last is null)
        {
            return "there is no chain yet";
        }

        if (diff && state.Full is null)
        {
            return $"chain {state.ChainId} records no full backup to take the differences from";
        }

        if (!state.Disks.SequenceEqual(bitmapDisks))
        {
            return $"the disk set changed ({string.Join(",", state.Disks)} then, {string.Join(",", bitmapDisks)} now)";
        }

        return await bitmaps.ProblemAsync(diff ? state.Full!.Name : state.Last.Name, cancellationToken);
    }
}
