using System.Text.Json;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>One restic snapshot as <c>restic snapshots --json</c> lists it.</summary>
public sealed record ResticSnapshot(string Id, DateTimeOffset Time, IReadOnlyList<string> Tags, IReadOnlyList<string> Paths)
{
    public string? Level => Tags.FirstOrDefault(t => t.StartsWith("level=", StringComparison.Ordinal))?["level=".Length..];
}

/// <summary>A local restic repository in a test's directory, and the contrib restic scripts run on it with the real virtbackup.</summary>
public sealed class ResticRepository(string workDirectory, HostVirtBackup virtbackup)
{
    public const string Password = "test-password";

    public static string BackupScript { get; } = HostTools.Contrib("restic", "virtbackup-restic-backup");

    public static string RestoreScript { get; } = HostTools.Contrib("restic", "virtbackup-restic-restore");

    public static string ForgetScript { get; } = HostTools.Contrib("restic", "virtbackup-restic-forget");

    public string Location { get; } = Path.Combine(workDirectory, "repo");

    public string WrapperState { get; } = Path.Combine(workDirectory, "wrapper-state");

    /// <summary>What the scripts run with: the repository, <paramref name="executable"/> as VIRTBACKUP (default the real one).</summary>
    public IReadOnlyDictionary<string, string?> Environment(string? executable = null, string password = Password) =>
        new Dictionary<string, string?>(virtbackup.Environment(executable))
        {
            ["RESTIC_REPOSITORY"] = Location,
            ["RESTIC_PASSWORD"] = password,
            ["RESTIC_CACHE_DIR"] = Path.Combine(workDirectory, "restic-cache"),
            ["VIRTBACKUP_RESTIC_STATE"] = WrapperState,
            ["RESTIC"] = null,
            ["TZ"] = "UTC",
        };

    public async Task InitAsync()
    {
        await HostTools.EnsureInstalledAsync();
        await HostTools.RunCheckedAsync("restic", ["init"], Environment());
    }

    /// <summary>Runs the backup wrapper with <paramref name="arguments"/> after <c>--domain</c>.</summary>
    public Task<ToolResult> BackupAsync(string domain, string[]? arguments = null, string? executable = null, string password = Password) =>
        HostTools.RunAsync(BackupScript, ["--domain", domain, .. arguments ?? []], Environment(executable, password));

    public Task<ToolResult> RestoreAsync(string domain, params string[] arguments) =>
        HostTools.RunAsync(RestoreScript, ["--domain", domain, .. arguments], Environment());

    /// <summary>Runs the chain-aware forget wrapper with <paramref name="arguments"/> after <c>--domain</c>.</summary>
    public Task<ToolResult> ForgetAsync(string domain, params string[] arguments) =>
        HostTools.RunAsync(ForgetScript, ["--domain", domain, .. arguments], Environment());

    public async Task<IReadOnlyList<ResticSnapshot>> SnapshotsAsync()
    {
        var result = await HostTools.RunCheckedAsync("restic", ["snapshots", "--json"], Environment());
        using var json = JsonDocument.Parse(result.Output);
        return [.. json.RootElement.EnumerateArray()
            .Select(s => new ResticSnapshot(
                s.GetProperty("id").GetString()!,
                s.GetProperty("time").GetDateTimeOffset(),
                s.TryGetProperty("tags", out var tags) ? [.. tags.EnumerateArray().Select(t => t.GetString()!)] : [],
                [.. s.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!)]))
            .OrderBy(s => s.Time)];
    }

    public async Task<byte[]> DumpAsync(string snapshot, string path) =>
        (await HostTools.RunCheckedAsync("restic", ["dump", snapshot, path], Environment())).Output;
}
