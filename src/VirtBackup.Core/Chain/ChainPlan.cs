using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>The level a backup was asked for; <see cref="Auto"/> is decided by <see cref="ChainPlanner"/>.</summary>
public enum RequestedLevel
{
    Copy,
    Full,
    Inc,
    Auto,
}

/// <summary>What this backup is in the chain.</summary>
/// <param name="Checkpoint">The checkpoint to create with the job; null for a copy.</param>
/// <param name="Parent">For an incremental, the checkpoint whose changes it carries.</param>
/// <param name="Previous">The chain state the plan continues (null when a new chain starts or for a copy).</param>
public sealed record ChainPlan(BackupLevel Level, string? ChainId, string? Checkpoint, string? Parent, ChainState? Previous, string Reason);
