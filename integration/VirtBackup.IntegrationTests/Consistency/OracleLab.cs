using System.Text;

namespace VirtBackup.IntegrationTests.Consistency;

/// <summary>
/// What the oracle tests do with the real executable: backups of an oracle guest into stream files under
/// <paramref name="work"/>, restores of them, and restored copies started with a console log of their own.
/// </summary>
internal sealed class OracleLab(string work)
{
    public static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(4);
    private const string Uri = "qemu:///system";
    private int _streamsTaken;

    /// <summary>`virtbackup backup --level LEVEL OPTIONS` of <paramref name="vm"/> into a new stream file; its path.</summary>
    public Task<string> BackupAsync(LabVm vm, string level, params string[] options) => BackupAsync(vm, level, new Dictionary<string, string?>(), options);

    /// <summary>The same with these environment variables set.</summary>
    public async Task<string> BackupAsync(LabVm vm, string level, IReadOnlyDictionary<string, string?> environment, params string[] options)
    {
        var path = Path.Combine(work, $"{Interlocked.Increment(ref _streamsTaken):D2}-{level}.tar");
        var log = new StringBuilder();
        await using (var file = File.Create(path))
        {
            var result = await VirtBackupCli.Command(["backup", "--domain", vm.Name, "--level", level, "--state-dir", Path.Combine(work, "state"), .. options])
                .WithStandardOutputPipe(PipeTarget.ToStream(file))
                .WithStandardErrorPipe(PipeTarget.ToStringBuilder(log))
                .WithEnvironmentVariables(environment)
                .ExecuteAsync();
            Assert.True(result.ExitCode == 0, $"backup --level {level} {string.Join(' ', options)} failed ({result.ExitCode}): {log}");
        }

        return path;
    }

    /// <summary>`virtbackup restore --define OPTIONS &lt; STREAM`.</summary>
    public static async Task RestoreAsync(string stream, params string[] options)
    {
        await using var input = File.OpenRead(stream);
        var result = await VirtBackupCli.RunAsync(["restore", "--define", .. options], input);
        Assert.True(result.ExitCode == 0, $"restore {string.Join(' ', options)} < {Path.GetFileName(stream)} failed ({result.ExitCode}): {result.StandardError}");
    }

    /// <summary>
    /// Starts the restored <paramref name="name"/> (a copy of <paramref name="vm"/>) with a console log of its own, its definition
    /// first changed by <paramref name="change"/> when given; returns that log's path.
    /// </summary>
    public static async Task<string> StartCopyAsync(LabVm vm, string name, Func<string, string>? change = null)
    {
        var console = $"{LabVm.ImagesDirectory}/{name}-console.log";
        var definition = await LabHost.RunAsync("virsh", ["-q", "-c", Uri, "dumpxml", "--inactive", name]);
        var xml = Path.Combine(Path.GetTempPath(), $"{name}.xml");
        definition = definition.Replace(vm.ConsoleLogPath, console, StringComparison.Ordinal);
        await File.WriteAllTextAsync(xml, change is null ? definition : change(definition));
        try
        {
            await LabHost.RunAsync("virsh", ["-q", "-c", Uri, "define", xml]);
        }
        finally
        {
            File.Delete(xml);
        }

        await LabHost.RunAsync("virsh", ["-q", "-c", Uri, "start", name]);
        return console;
    }

    public static Task DestroyAsync(string name) => LabHost.RunAsync("virsh", ["-q", "-c", Uri, "destroy", name]);

    /// <summary>The swtpm state directory of the defined domain <paramref name="name"/>.</summary>
    public static async Task<string> TpmStateDirectoryAsync(string name) =>
        $"/var/lib/libvirt/swtpm/{(await LabHost.RunAsync("virsh", ["-q", "-c", Uri, "domuuid", name])).Trim()}/tpm2";

    /// <summary>Runs <paramref name="actions"/> at most two at a time (each boots a TCG guest on one core).</summary>
    public static async Task<T[]> TwoAtATimeAsync<T>(IEnumerable<Func<Task<T>>> actions)
    {
        using var slots = new SemaphoreSlim(2);
        return await Task.WhenAll(actions.Select(async action =>
        {
            await slots.WaitAsync();
            try
            {
                return await action();
            }
            finally
            {
                slots.Release();
            }
        }));
    }
}
