using System.Text.RegularExpressions;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>One finished Bacula job as bacula-lab.sh reports it.</summary>
public sealed partial record BaculaJob(int JobId, char JobStatus, int JobErrors, char Level)
{
    public static BaculaJob Parse(ToolResult result)
    {
        var match = StatusLine().Match(result.StandardOutput);
        Assert.True(result.ExitCode == 0 && match.Success, $"bacula-lab.sh gave no job status: {result}");
        return new BaculaJob(
            int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
            match.Groups[2].Value[0],
            int.Parse(match.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture),
            match.Groups[4].Value[0]);
    }

    [GeneratedRegex(@"JobId=(\d+) JobStatus=(\S) JobErrors=(\d+) Level=(\S)")]
    private static partial Regex StatusLine();
}

/// <summary>
/// The private Bacula of integration/hosts/bacula-lab.sh, up once for all Bacula tests of a run (in its
/// own directory and on its own ports, 19111-19113, so a lab someone runs by hand on the defaults is not
/// touched), and taken down and removed at the end.
/// </summary>
public sealed class BaculaLab : IAsyncLifetime
{
    private static readonly string Script = Path.Combine(HostTools.HostsDirectory, "bacula-lab.sh");

    public string Directory { get; } = "/var/tmp/vbt-bacula-tests";

    /// <summary>Where the client-side scripts keep their job records (shared by all jobs of the lab).</summary>
    public string ClientState => Path.Combine(Directory, "client-state");

    private IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["VBT_BACULA_DIR"] = Directory,
        ["VBT_BACULA_PORT_BASE"] = "19111",
    };

    public async Task InitializeAsync()
    {
        await HostTools.EnsureInstalledAsync();
        await RunAsync("down", "--purge"); // a lab left by a killed run
        await RunAsync("up");
    }

    public async Task DisposeAsync() => await RunAsync("down", "--purge");

    /// <summary>
    /// The FileSet plugin line of contrib/bacula: the Director runs virtbackup-bacula-plugin with the
    /// job's level and JobId, which names the client-side reader and writer with <paramref name="clientOptions"/>
    /// (the program and its config) and this lab's client state directory.
    /// </summary>
    public string GeneratorPlugin(string domain, IEnumerable<string> clientOptions) =>
        string.Join(' ', [
            "|" + HostTools.Contrib("bacula", "virtbackup-bacula-plugin"),
            "--reader", HostTools.Contrib("bacula", "virtbackup-bacula-reader"),
            "--writer", HostTools.Contrib("bacula", "virtbackup-bacula-writer"),
            domain, "%l", "%i",
            .. clientOptions, "--state-dir", ClientState]);

    /// <summary>
    /// The restore options file of the contrib writer for <paramref name="domain"/> (read by every restore of
    /// the domain's jobs while it exists): <paramref name="options"/>, or removed when null.
    /// </summary>
    public void SetRestoreOptions(string domain, string? options)
    {
        var file = Path.Combine(ClientState, $"{domain}.restore");
        if (options is null)
        {
            File.Delete(file);
            return;
        }

        System.IO.Directory.CreateDirectory(ClientState);
        File.WriteAllText(file, $"# the next restores of {domain}\n{options}\n");
    }

    /// <summary>The contrib check as the job's client-side After RunScript.</summary>
    public string CheckScript =>
        $"{HostTools.Contrib("bacula", "virtbackup-bacula-check")} --jobid %i --state-dir {ClientState}";

    /// <summary>
    /// contrib/bacula/virtbackup-dir.conf as a user would adapt it: the lab's resource names, the
    /// scripts from this checkout, the producer's options and the lab's client state directory,
    /// for <paramref name="domain"/> (its Job is virtbackup-DOMAIN; its JobDefs and Schedule are named after the domain too).
    /// </summary>
    public async Task DefineContribExampleAsync(string domain, IEnumerable<string> clientOptions)
    {
        var example = await File.ReadAllTextAsync(HostTools.Contrib("bacula", "virtbackup-dir.conf"));
        var generator = GeneratorPlugin(domain, clientOptions)[1..];
        var adapted = example
            .Replace("\"vmhost-fd\"", "vbt-fd", StringComparison.Ordinal)
            .Replace("\"File1\"", "VbtStorage", StringComparison.Ordinal)
            .Replace("Pool = \"File\"", "Pool = VbtPool", StringComparison.Ordinal)
            .Replace("/var/lib/bacula/", Path.Combine(Directory, "work") + "/", StringComparison.Ordinal)
            .Replace("/var/lib/virtbackup/restore", Path.Combine(Directory, "restores"), StringComparison.Ordinal)
            .Replace("/usr/local/sbin/virtbackup-bacula-plugin vm1 %l %i", generator, StringComparison.Ordinal)
            .Replace("/usr/local/sbin/virtbackup-bacula-check --jobid %i", CheckScript, StringComparison.Ordinal)
            .Replace("virtbackup-vm1", $"virtbackup-{domain}", StringComparison.Ordinal)
            .Replace("virtbackup-restore", $"virtbackup-restore-{domain}", StringComparison.Ordinal)
            // One lab director serves every test of the collection: the shared resources get per-domain names too.
            .Replace("\"virtbackup-cycle\"", $"\"virtbackup-cycle-{domain}\"", StringComparison.Ordinal)
            .Replace("Name = \"virtbackup\"", $"Name = \"virtbackup-defs-{domain}\"", StringComparison.Ordinal)
            .Replace("JobDefs = \"virtbackup\"", $"JobDefs = \"virtbackup-defs-{domain}\"", StringComparison.Ordinal);
        Assert.DoesNotContain("/usr/local/sbin", adapted);
        await DefineResourcesAsync($"contrib-{domain}", adapted);
    }

    /// <summary>Adds (or replaces) director resources <paramref name="resources"/> as lab file <paramref name="name"/>; reloads.</summary>
    public async Task DefineResourcesAsync(string name, string resources)
    {
        var file = Path.Combine(Directory, $"{name}.conf");
        await File.WriteAllTextAsync(file, resources);
        await RunCheckedAsync(["define-file", name, file]);
    }

    /// <summary>Bacula's own <c>prune volume</c> on the volumes job <paramref name="jobId"/> was written to; what bconsole said.</summary>
    public async Task<string> PruneVolumesAsync(int jobId) =>
        (await RunCheckedAsync(["prune-volumes", jobId.ToString(System.Globalization.CultureInfo.InvariantCulture)])).StandardOutput;

    public async Task DefineJobAsync(string job, string plugin, string? clientAfter = null) =>
        await RunCheckedAsync(clientAfter is null ? ["define-job", job, plugin] : ["define-job", job, plugin, clientAfter]);

    public async Task<BaculaJob> RunBackupAsync(string job, string level) =>
        BaculaJob.Parse(await RunCheckedAsync(["run-backup", job, level]));

    public async Task<BaculaJob> RunRestoreAsync(int backupJobId, string where) =>
        BaculaJob.Parse(await RunCheckedAsync(["run-restore", backupJobId.ToString(System.Globalization.CultureInfo.InvariantCulture), where]));

    public async Task<string> JobLogAsync(int jobId) =>
        (await RunCheckedAsync(["joblog", jobId.ToString(System.Globalization.CultureInfo.InvariantCulture)])).StandardOutput;

    private Task<ToolResult> RunAsync(params string[] arguments) => HostTools.RunAsync(Script, arguments, Environment);

    private Task<ToolResult> RunCheckedAsync(string[] arguments) => HostTools.RunCheckedAsync(Script, arguments, Environment);
}

/// <summary>The Bacula tests share the lab; they run lab VMs, so like <see cref="Lab.LabCollection"/> they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BaculaLabCollection : ICollectionFixture<BaculaLab>
{
    public const string Name = "Bacula lab";
}
