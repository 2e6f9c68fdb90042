using System.ComponentModel;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// A stream rewritten by another tar tool, in its own temporary directory: GNU tar unpacking it and packing the
/// members again in their order (the command docs/FORMAT.md documents), or borg 1.2 importing and exporting it.
/// </summary>
internal sealed class Repack : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-repack-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// <c>tar -xf s.tar -C d; tar -tf s.tar > names; tar -C d -cf r.tar --format=F --no-recursion -T names</c>, with
    /// <paramref name="change"/> applied to the unpacked directory (or the name list) before packing.
    /// </summary>
    public async Task<byte[]> GnuTarAsync(byte[] stream, string format, string[]? extraArgs = null, Action<string, List<string>>? change = null)
    {
        var source = Save(stream, "s.tar");
        var unpacked = Directory.CreateDirectory(Path.Combine(_dir, "d")).FullName;
        await RunAsync("tar", ["-xf", source, "-C", unpacked]);
        var names = (await RunAsync("tar", ["-tf", source])).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        change?.Invoke(unpacked, names);
        var list = Path.Combine(_dir, "names");
        await File.WriteAllLinesAsync(list, names);
        var repacked = Path.Combine(_dir, $"r-{format}.tar");
        await RunAsync("tar", ["-C", unpacked, "-cf", repacked, $"--format={format}", "--no-recursion", .. extraArgs ?? [], "-T", list]);
        Directory.Delete(unpacked, recursive: true);
        return await File.ReadAllBytesAsync(repacked);
    }

    /// <summary><c>borg import-tar repo::a s.tar; borg export-tar repo::a r.tar</c> in a private, unencrypted repository.</summary>
    public async Task<byte[]> BorgAsync(byte[] stream)
    {
        var source = Save(stream, "s.tar");
        var repo = Path.Combine(_dir, "repo");
        var exported = Path.Combine(_dir, "borg.tar");
        var env = new Dictionary<string, string?>
        {
            ["BORG_BASE_DIR"] = Path.Combine(_dir, "borg-base"),
            ["BORG_PASSPHRASE"] = "",
            ["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "yes",
            ["BORG_RELOCATED_REPO_ACCESS_IS_OK"] = "yes",
        };
        await RunAsync("borg", ["init", "--encryption", "none", repo], env);
        await RunAsync("borg", ["import-tar", $"{repo}::a", source], env);
        await RunAsync("borg", ["export-tar", $"{repo}::a", exported], env);
        return await File.ReadAllBytesAsync(exported);
    }

    public string Save(byte[] bytes, string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static async Task<string> RunAsync(string tool, string[] args, IReadOnlyDictionary<string, string?>? env = null)
    {
        BufferedCommandResult result;
        try
        {
            result = await Cli.Wrap(tool).WithArguments(args).WithEnvironmentVariables(env ?? new Dictionary<string, string?>())
                .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"'{tool}' is not installed: the rewritten-stream tests need GNU tar and borg 1.2 (apt-get install tar borgbackup).", e);
        }
        Assert.True(result.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed ({result.ExitCode}): {result.StandardError}");
        return result.StandardOutput;
    }
}
