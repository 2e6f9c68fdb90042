using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>The level a backup was asked for; <see cref="Auto"/> is decided by <see cref="ChainPlanner"/>.</summary>
public enum RequestedLevel
{
    Copy,
    Full,
    Inc,
    Diff,
    Auto,
}

/// <summary>
/// What this backup is in the chain, and what must change among libvirt's checkpoints before it begins.
/// <see cref="ChainPlanner"/> makes it and changes nothing; <see cref="ChainPlanApplier"/> carries it out, run by the
/// caller before the VM is touched.
/// </summary>
/// <param name="Checkpoint">The checkpoint to create with the job; null for a copy.</param>
/// <param name="Parent">For an incremental, the checkpoint whose changes it carries (the chain's last); for a diff, the chain's full.</param>
/// <param name="Previous">The chain state the plan continues (null when a new chain starts or for a copy).</param>
public sealed record ChainPlan(BackupLevel Level, string? ChainId, string? Checkpoint, string? Parent, ChainState? Previous, string Reason)
{
    /// <summary>The chain's name (<see cref="ChainName"/>); null for the unnamed chain.</summary>
    public string? Chain { get; init; }

    /// <summary>What the backup was asked for.</summary>
    public RequestedLevel Requested { get; init; }

    /// <summary>Removed first, whatever else the plan says.</summary>
    public ChainCleanup Cleanup { get; init; } = ChainCleanup.None;

    /// <summary>
    /// Non-null when no backup may be made (an incremental or diff was asked for and the chain cannot continue): the reason,
    /// said as a <see cref="ChainStateException"/> once <see cref="Cleanup"/> is done.
    /// </summary>
    public string? Refusal { get; init; }

    /// <summary>
    /// For an incremental or diff: the chain's committed checkpoints libvirt lost (the domain was undefined and defined again),
    /// parents first, to redefine from the saved chain state. When libvirt refuses one, a new chain starts instead.
    /// </summary>
    public IReadOnlyList<CommittedCheckpoint> Redefinitions { get; init; } = [];

    /// <summary>
    /// Non-null when a new chain starts: the old chain's checkpoints (only ones virtbackup made, children first),
    /// removed together with the chain state.
    /// </summary>
    public IReadOnlyList<string>? OldChain { get; init; }
}

/// <summary>
/// What a run removes before anything else: checkpoints of ours that no completed stream carried (a killed run left
/// them), children first.
/// </summary>
/// <param name="Committed">The checkpoints the chain state records: a bitmap of ours in the images that neither these
/// nor a libvirt checkpoint name is an orphan of an interrupted shut-off run, and is removed too.</param>
public sealed record ChainCleanup(IReadOnlyList<string> Uncommitted, IReadOnlySet<string> Committed)
{
    public static readonly ChainCleanup None = new([], new HashSet<string>());
}
