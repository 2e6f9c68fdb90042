using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
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
/// What virtbackup remembers about one of a domain's chains between runs, kept under the state directory
/// by domain UUID (<see cref="ChainStore"/>). Only checkpoints of completed streams are ever recorded here.
/// </summary>
public sealed partial record ChainState(
    string DomainUuid,
    string DomainName,
    string ChainId,
    IReadOnlyList<string> Disks,
    IReadOnlyList<CommittedCheckpoint> Checkpoints)
{
    /// <summary>Every checkpoint virtbackup creates starts with this; others are never touched.</summary>
    public const string CheckpointPrefix = "virtbackup-";

    /// <summary>The chain's name (<see cref="ChainName"/>); null for the unnamed chain (and in every state file written before named chains).</summary>
    public string? Chain { get; init; }

    [JsonIgnore]
    public CommittedCheckpoint? Last => Checkpoints.Count == 0 ? null : Checkpoints[^1];

    /// <summary>The checkpoint of the chain's full backup (its first), which a diff takes the changes from.</summary>
    [JsonIgnore]
    public CommittedCheckpoint? Full => Checkpoints.Count > 0 && Checkpoints[0].Level == "full" ? Checkpoints[0] : null;

    /// <summary>How <see cref="CommittedCheckpoint.Level"/> names a level.</summary>
    public static string LevelOf(BackupLevel level) => StreamRules.LevelName(level);

    public static string NewChainId() => Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// <c>virtbackup-ID-SEQ</c> for the unnamed chain (as always), <c>virtbackup-NAME-ID-SEQ</c> for a named one: the name
    /// says which chain a checkpoint belongs to, so the checkpoints of two chains never collide and a chain's full removes
    /// only its own (<see cref="BelongsTo"/>).
    /// </summary>
    public static string CheckpointName(string? chain, string chainId, int sequence) =>
        chain is null ? $"{CheckpointPrefix}{chainId}-{sequence:D4}" : $"{CheckpointPrefix}{chain}-{chainId}-{sequence:D4}";

    /// <summary>The unnamed chain's checkpoint name.</summary>
    public static string CheckpointName(string chainId, int sequence) => CheckpointName(null, chainId, sequence);

    public static bool IsOurs(string checkpointName) => checkpointName.StartsWith(CheckpointPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Whether checkpoint <paramref name="checkpointName"/> is one of <paramref name="chain"/>'s (by its name, see
    /// <see cref="CheckpointName"/>): a checkpoint of ours that names no chain belongs to the unnamed one.
    /// </summary>
    public static bool BelongsTo(string checkpointName, string? chain) =>
        IsOurs(checkpointName) && ChainOf(checkpointName) == chain;

    /// <summary>The chain a checkpoint of ours names, or null (the unnamed chain's: <c>virtbackup-ID-SEQ</c>, or any other form).</summary>
    private static string? ChainOf(string checkpointName) =>
        NamedCheckpoint().Match(checkpointName) is { Success: true } m ? m.Groups["chain"].Value : null;

    [GeneratedRegex("^virtbackup-(?<chain>[A-Za-z0-9][A-Za-z0-9_-]*)-[0-9a-f]{12}-[0-9]{4,}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamedCheckpoint();
}
