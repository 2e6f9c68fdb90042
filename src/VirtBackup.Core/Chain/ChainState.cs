using System.Text.Json.Serialization;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>A checkpoint that a completed stream carried: the chain may continue from it.</summary>
/// <param name="Name">libvirt checkpoint name (always starts with <see cref="ChainState.CheckpointPrefix"/>).</param>
/// <param name="Parent">The checkpoint its stream's changes are relative to (an inc's: the one before it; a diff's: the
/// chain's full), or null for the chain's full backup.</param>
/// <param name="Level">"full", "inc" or "diff" (<see cref="ChainState.LevelOf"/>).</param>
/// <param name="Xml">The checkpoint XML libvirt gave after the backup, to redefine it if libvirt lost it.</param>
public sealed record CommittedCheckpoint(string Name, string? Parent, string Level, DateTimeOffset CreatedUtc, string Xml);

/// <summary>
/// What virtbackup remembers about one domain's chain between runs, kept under the state directory
/// by domain UUID. Only checkpoints of completed streams are ever recorded here.
/// </summary>
public sealed record ChainState(
    string DomainUuid,
    string DomainName,
    string ChainId,
    IReadOnlyList<string> Disks,
    IReadOnlyList<CommittedCheckpoint> Checkpoints)
{
    /// <summary>Every checkpoint virtbackup creates starts with this; others are never touched.</summary>
    public const string CheckpointPrefix = "virtbackup-";

    [JsonIgnore]
    public CommittedCheckpoint? Last => Checkpoints.Count == 0 ? null : Checkpoints[^1];

    /// <summary>The checkpoint of the chain's full backup (its first), which a diff takes the changes from.</summary>
    [JsonIgnore]
    public CommittedCheckpoint? Full => Checkpoints.Count > 0 && Checkpoints[0].Level == "full" ? Checkpoints[0] : null;

    /// <summary>How <see cref="CommittedCheckpoint.Level"/> names a level.</summary>
    public static string LevelOf(BackupLevel level) => StreamRules.LevelName(level);

    public static string NewChainId() => Guid.NewGuid().ToString("N")[..12];

    public static string CheckpointName(string chainId, int sequence) => $"{CheckpointPrefix}{chainId}-{sequence:D4}";

    public static bool IsOurs(string checkpointName) => checkpointName.StartsWith(CheckpointPrefix, StringComparison.Ordinal);
}
