using System.Text.Json;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary><see cref="IChainHost"/> on a <see cref="ResticRepository"/>: snapshots tagged virtbackup, domain=NAME, level=L.</summary>
public sealed class ResticChainHost(ResticRepository restic) : IChainHost
{
    public string FreeSpaceOption => "--prune";

    public Task InitAsync() => restic.InitAsync();

    public Task AddFakeAsync(string domain, string level, DateTimeOffset time, string content) =>
        HostTools.RunCheckedAsync("restic", ["backup", "--stdin", "--stdin-filename", $"{domain}.tar", "--tag", "virtbackup",
            "--tag", $"domain={domain}", "--tag", $"level={level}", "--time", ChainHosts.Format(time, " ")], restic.Environment(), content);

    public Task<ToolResult> BackupAsync(string domain, string level, DateTimeOffset time) =>
        restic.BackupAsync(domain, ["--level", level, "--", "--time", ChainHosts.Format(time, " ")]);

    public Task<ToolResult> PruneAsync(string domain, params string[] arguments) => restic.ForgetAsync(domain, arguments);

    public async Task<IReadOnlyList<StoredBackup>> ListAsync(string domain)
    {
        var result = await HostTools.RunCheckedAsync("restic", ["snapshots", "--json", "--tag", $"virtbackup,domain={domain}"], restic.Environment());
        using var json = JsonDocument.Parse(result.Output);
        return [.. json.RootElement.EnumerateArray()
            .Select(s => (Time: s.GetProperty("time").GetDateTimeOffset(), Backup: new StoredBackup(
                s.GetProperty("id").GetString()!,
                s.GetProperty("short_id").GetString()!,
                s.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!).Single(t => t.StartsWith("level=", StringComparison.Ordinal))["level=".Length..],
                s.GetProperty("time").GetString()!)))
            .OrderBy(s => s.Time)
            .Select(s => s.Backup)];
    }

    public Task<ToolResult> RestoreAsync(string domain, string id, params string[] arguments) =>
        restic.RestoreAsync(domain, ["--snapshot", id, .. arguments]);
}
