using System.Text.Json;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// A local borg repository (repokey, so a wrong passphrase fails) in a test's directory, with borg's own
/// config, cache and security directories there too, and the contrib borg scripts run on it with the real
/// virtbackup. Archives are named DOMAIN@LEVEL@TIME, as virtbackup-borg-backup names them.
/// </summary>
public sealed class BorgRepository(string workDirectory, HostVirtBackup virtbackup) : IChainHost
{
    public const string Passphrase = "test-passphrase";

    public static string BackupScript { get; } = HostTools.Contrib("borg", "virtbackup-borg-backup");

    public static string RestoreScript { get; } = HostTools.Contrib("borg", "virtbackup-borg-restore");

    public static string PruneScript { get; } = HostTools.Contrib("borg", "virtbackup-borg-prune");

    public string Location { get; } = Path.Combine(workDirectory, "borg-repo");

    public string WrapperState { get; } = Path.Combine(workDirectory, "borg-wrapper-state");

    public string FreeSpaceOption => "--compact";

    /// <summary>What the scripts run with: the repository, <paramref name="executable"/> as VIRTBACKUP (default the real one).</summary>
    public IReadOnlyDictionary<string, string?> Environment(string? executable = null, string passphrase = Passphrase) =>
        new Dictionary<string, string?>(virtbackup.Environment(executable))
        {
            ["BORG_REPO"] = Location,
            ["BORG_PASSPHRASE"] = passphrase,
            ["BORG_BASE_DIR"] = Path.Combine(workDirectory, "borg-base"),
            ["BORG_PASSCOMMAND"] = null,
            ["BORG_PASSPHRASE_FD"] = null,
            ["VIRTBACKUP_BORG_STATE"] = WrapperState,
            ["BORG"] = null,
            ["TZ"] = "UTC",
        };

    public async Task InitAsync()
    {
        await HostTools.EnsureInstalledAsync();
        await HostTools.RunCheckedAsync("borg", ["init", "--encryption", "repokey"], Environment());
    }

    /// <summary>Runs the backup wrapper with <paramref name="arguments"/> after <c>--domain</c>.</summary>
    public Task<ToolResult> BackupAsync(string domain, string[]? arguments = null, string? executable = null, string passphrase = Passphrase) =>
        HostTools.RunAsync(BackupScript, ["--domain", domain, .. arguments ?? []], Environment(executable, passphrase));

    public Task<ToolResult> BackupAsync(string domain, string level, DateTimeOffset time) =>
        BackupAsync(domain, ["--level", level, "--", "--timestamp", ChainHosts.Format(time, "T")]);

    public Task AddFakeAsync(string domain, string level, DateTimeOffset time, string content) =>
        HostTools.RunCheckedAsync("borg", ["create", "--content-from-command", "--stdin-name", $"{domain}.tar",
            "--timestamp", ChainHosts.Format(time, "T"), $"::{domain}@{level}@{ChainHosts.Format(time, "T")}.000000",
            "--", "printf", "%s", content], Environment());

    public Task<ToolResult> PruneAsync(string domain, params string[] arguments) =>
        HostTools.RunAsync(PruneScript, ["--domain", domain, .. arguments], Environment());

    public Task<ToolResult> RestoreAsync(string domain, string id, params string[] arguments) =>
        HostTools.RunAsync(RestoreScript, ["--domain", domain, "--archive", id, .. arguments], Environment());

    public async Task<IReadOnlyList<StoredBackup>> ListAsync(string domain)
    {
        var result = await HostTools.RunCheckedAsync("borg", ["list", "--json", "--glob-archives", $"{domain}@*"], Environment());
        using var json = JsonDocument.Parse(result.Output);
        return [.. json.RootElement.GetProperty("archives").EnumerateArray()
            .Select(a => (Name: a.GetProperty("name").GetString()!, Time: a.GetProperty("time").GetString()!))
            .OrderBy(a => a.Time, StringComparer.Ordinal)
            .ThenBy(a => a.Name, StringComparer.Ordinal)
            .Select(a => new StoredBackup(a.Name, a.Name, a.Name.Split('@')[1], a.Time))];
    }

    /// <summary>The stream stored in archive <paramref name="name"/>.</summary>
    public async Task<byte[]> ExtractAsync(string domain, string name) =>
        (await HostTools.RunCheckedAsync("borg", ["extract", "--stdout", $"::{name}", $"{domain}.tar"], Environment())).Output;
}
