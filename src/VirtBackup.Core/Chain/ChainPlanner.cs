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
/// virtbackup on the images for a shut-off one. It plans for <paramref name="store"/>'s chain (<see cref="ChainStore.Chain"/>)
/// and leaves the domain's other chains alone: their committed checkpoints are never cleaned up, and a full removes only
/// this chain's old checkpoints (<see cref="ChainState.BelongsTo"/>).
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
                Chain = store.Chain,
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
            var name = ChainState.CheckpointName(store.Chain, state.ChainId, state.Checkpoints.Count + 1);
            var reason = diff
                ? $"differential of chain {state.ChainId}: the changes since its full {parent.Name}"
                : $"continuing chain {state.ChainId} from {last.Name}";
            return new ChainPlan(diff ? BackupLevel.Diff : BackupLevel.Inc, state.ChainId, name, parent.Name, state, reason)
            {
                Chain = store.Chain,
                Requested = requested,
                Cleanup = cleanup,
                // libvirt lost the chain's metadata when it lost the last checkpoint's (a domain undefined and defined again).
                Redefinitions = existing.Contains(last.Name) && existing.Contains(parent.Name)
                    ? []
                    : [.. state.Checkpoints.Where(c => !existing.Contains(c.Name))],
            };
        }

        return NewChain(requested, domain.Name, store.Chain, cleanup, OldChain(existing, cleanup, store.Chain), problem);
    }

    /// <summary>Only the cleanup: what <c>repair</c> removes (of every chain of the domain: each keeps its committed checkpoints).</summary>
    public ChainCleanup PlanCleanup() => CleanupOf(Load(), domain.ListCheckpoints());

    /// <summary>
    /// A new chain of <paramref name="chain"/> because of <paramref name="problem"/>, after <paramref name="cleanup"/>;
    /// removing <paramref name="oldChain"/> first. When an incremental or differential was asked for, the refusal instead.
    /// </summary>
    public static ChainPlan NewChain(
        RequestedLevel requested, string domainName, string? chain, ChainCleanup cleanup, IReadOnlyList<string> oldChain, string problem)
    {
        if (requested is RequestedLevel.Inc or RequestedLevel.Diff)
        {
            var what = requested == RequestedLevel.Inc ? "an incremental" : "a differential";
            var of = chain is null ? $"'{domainName}'" : $"'{domainName}' in {ChainName.Describe(chain)}";
            return new ChainPlan(requested == RequestedLevel.Inc ? BackupLevel.Inc : BackupLevel.Diff, null, null, null, null, problem)
            {
                Chain = chain,
                Requested = requested,
                Cleanup = cleanup,
                Refusal = $"cannot make {what} backup of {of}: {problem}. Run a full backup (--level full or auto)",
            };
        }

        var chainId = ChainState.NewChainId();
        var reason = chain is null ? $"new chain {chainId}: {problem}" : $"new chain {chainId} of {ChainName.Describe(chain)}: {problem}";
        return new ChainPlan(BackupLevel.Full, chainId, ChainState.CheckpointName(chain, chainId, 1), null, null, reason)
        {
            Chain = chain,
            Requested = requested,
            Cleanup = cleanup,
            OldChain = oldChain,
        };
    }

    /// <summary>
    /// The checkpoints of <paramref name="chain"/> among <paramref name="existing"/> (parents first) that the cleanup leaves,
    /// children first: another chain's are never among them.
    /// </summary>
    public static IReadOnlyList<string> OldChain(IReadOnlyList<string> existing, ChainCleanup cleanup, string? chain) =>
        [.. existing.Reverse().Where(n => ChainState.BelongsTo(n, chain) && !cleanup.Uncommitted.Contains(n))];

    /// <summary>
    /// Checkpoints of ours that no chain committed. Kept: this chain's committed ones (<paramref name="state"/>), every
    /// other chain's, and, of another chain whose state file is unreadable, all of its checkpoints (this run cannot tell
    /// which ones its streams carried; that chain's own next run decides).
    /// </summary>
    private ChainCleanup CleanupOf(ChainState? state, IReadOnlyList<string> existing)
    {
        var committed = state?.Checkpoints.Select(c => c.Name).ToHashSet() ?? [];
        foreach (var (chain, other) in store.LoadOthers(domain.Uuid))
        {
            if (other is null)
            {
                log.Warning("the state of {Chain} of {Domain} is unreadable: its checkpoints are left alone", ChainName.Describe(chain), domain.Name);
                committed.UnionWith(existing.Where(n => ChainState.BelongsTo(n, chain)));
            }
            else
            {
                committed.UnionWith(other.Checkpoints.Select(c => c.Name));
            }
        }

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
