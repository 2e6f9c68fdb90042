using System.Text.Json.Serialization;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>One restored disk image as the chain position records it.</summary>
/// <param name="Path">The image's final path (under the target root, if any).</param>
/// <param name="ModifiedUtcTicks">The image's mtime right after the restore: a later change means someone wrote to it.</param>
public sealed record RestoredDisk(string Target, string Path, DiskFormat Format, long VirtualSize, long ModifiedUtcTicks);

/// <summary>
/// Where a restored chain stands: written next to the restored images (<c>DISK_DIR/.virtbackup/NAME.chain.json</c>)
/// after every restore that completed, last of all its steps. An incremental stream is applied only when its
/// <see cref="Manifest.ChainId"/> and <see cref="Manifest.ParentCheckpoint"/> equal <see cref="ChainId"/> and
/// <see cref="Checkpoint"/> here.
/// </summary>
/// <param name="DomainName">The restored domain's name (the <c>--as</c> name, if given).</param>
/// <param name="DomainUuid">The restored domain's UUID (new for <c>--as</c>).</param>
/// <param name="SourceDomainUuid">The UUID of the domain the streams are backups of.</param>
/// <param name="ChainId">The stream chain; null after a copy stream, which starts no chain.</param>
/// <param name="Checkpoint">The checkpoint of the last stream applied; null after a copy.</param>
/// <param name="Level">The level of the last stream applied.</param>
/// <param name="Streams">How many streams of this chain have been applied (1 after the full).</param>
public sealed record ChainPosition(
    int FormatVersion,
    string DomainName,
    string DomainUuid,
    string SourceDomainUuid,
    string? ChainId,
    string? Checkpoint,
    BackupLevel Level,
    int Streams,
    DateTime AppliedUtc,
    DateTime StreamCreatedUtc,
    IReadOnlyList<RestoredDisk> Disks,
    string? NvramPath,
    string? TpmStateDirectory)
{
    public const int CurrentFormatVersion = 1;

    /// <summary>The name of the restored chain (<see cref="Manifest.Chain"/>); null for the unnamed chain (and in positions written before named chains).</summary>
    public string? Chain { get; init; }

    [JsonIgnore]
    public string Describe => ChainId is null
        ? $"a copy backup taken {StreamCreatedUtc:u} (no chain)"
        : $"checkpoint '{Checkpoint}' of chain '{ChainId}'{(Chain is null ? "" : $" ({ChainName.Describe(Chain)})")} ({History})";

    /// <summary>How many streams were applied and when the last was taken.</summary>
    [JsonIgnore]
    public string History => $"{Streams} stream{(Streams == 1 ? "" : "s")} applied, the last taken {StreamCreatedUtc:u}";

    /// <summary>The last stream applied, as <see cref="StreamIdOf"/> names it.</summary>
    [JsonIgnore]
    public string StreamId => Checkpoint ?? $"copy taken {StreamCreatedUtc:O}";

    /// <summary>What names a stream in a commit marker: its checkpoint, or for a copy its time.</summary>
    public static string StreamIdOf(Manifest manifest) => manifest.Checkpoint ?? $"copy taken {manifest.CreatedUtc:O}";
}

/// <summary>An incremental stream does not continue the chain restored so far (gap, wrong order, other chain).</summary>
public sealed class ChainGapException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
