using System.Globalization;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// One stored virtbackup stream as a deduplicating host lists it: its id (what the scripts take), its label
/// (what the prune report names it by), level and time as the host prints them.
/// </summary>
public sealed record StoredBackup(string Id, string Label, string Level, string Time)
{
    /// <summary>The line the chain-aware prune wrappers print for it: "LABEL TIME LEVEL REASON".</summary>
    public string PlanLine(string reason) => $"{Label} {Time} {Level} {reason}";
}

/// <summary>
/// A deduplicating host (restic, borg) with its contrib glue: backup, restore and the chain-aware prune
/// wrapper, and backups made by hand with chosen times and levels (tiny fake streams) to test the
/// retention logic without a VM.
/// </summary>
public interface IChainHost
{
    /// <summary>The prune wrapper's option that also frees the data (restic --prune, borg --compact).</summary>
    string FreeSpaceOption { get; }

    Task InitAsync();

    /// <summary>Stores <paramref name="content"/> as the domain's stream of <paramref name="level"/> at <paramref name="time"/>, tagged or named as the backup wrapper does.</summary>
    Task AddFakeAsync(string domain, string level, DateTimeOffset time, string content);

    /// <summary>Runs the backup wrapper with the host's own option that sets the stored time to <paramref name="time"/>.</summary>
    Task<ToolResult> BackupAsync(string domain, string level, DateTimeOffset time);

    /// <summary>Runs the chain-aware prune wrapper with <paramref name="arguments"/> after <c>--domain</c>.</summary>
    Task<ToolResult> PruneAsync(string domain, params string[] arguments);

    /// <summary>The domain's stored backups, oldest first.</summary>
    Task<IReadOnlyList<StoredBackup>> ListAsync(string domain);

    /// <summary>Runs the restore wrapper for the state as of <paramref name="id"/> with <paramref name="arguments"/> (e.g. --list, or -- restore options).</summary>
    Task<ToolResult> RestoreAsync(string domain, string id, params string[] arguments);
}

/// <summary>Makes the chain hosts by name, for theories that run one test body on each.</summary>
public static class ChainHosts
{
    public static IChainHost Create(string host, string workDirectory, HostVirtBackup virtbackup) => host switch
    {
        "restic" => new ResticChainHost(new ResticRepository(workDirectory, virtbackup)),
        "borg" => new BorgRepository(workDirectory, virtbackup),
        _ => throw new ArgumentOutOfRangeException(nameof(host), host, "restic or borg"),
    };

    /// <summary>A time as restic's --time and borg's --timestamp take it (UTC: the tests run the hosts with TZ=UTC).</summary>
    public static string Format(DateTimeOffset time, string separator) =>
        time.UtcDateTime.ToString($"yyyy-MM-dd'{separator}'HH:mm:ss", CultureInfo.InvariantCulture);
}
