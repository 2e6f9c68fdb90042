using System.Text.RegularExpressions;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// Plain tar as the backup host: the commands of docs/HOSTS.md ("Plain tar"), run verbatim on real backups of
/// a lab VM with GNU tar, zstd and coreutils: tar lists the stream, extracts the NVRAM and TPM state as they
/// were, and the documented rebuild recipe turns a full and an incremental stream into the source's disk.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class PlainTarHostTests : IDisposable
{
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;

    public PlainTarHostTests() => _virtbackup = new HostVirtBackup(_work.Path);

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = 180_000)]
    public async Task The_documented_tar_commands_list_and_extract_a_real_stream_and_the_recipe_rebuilds_its_disks_byte_exact()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        var commands = DocumentBlock("plain-tar").Replace("vm1", vm.Name, StringComparison.Ordinal);

        var (listing, atFull) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source-full"), () => RunBashAsync(commands));
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "8M", "1M", "zero");
        await vm.InjectWriteAsync("vdb", "1M", "6M", "0x55");
        var incremental = _work.Sub($"{vm.Name}-inc1.tar");
        var (inc, atInc) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source-inc"), () => RunBashAsync(
            $"virtbackup backup --domain {vm.Name} --level inc --compression none > {incremental} && virtbackup verify < {incremental}"));

        Assert.True(listing.ExitCode == 0, listing.ToString());
        Assert.True(inc.ExitCode == 0, inc.ToString());
        // tar -tvf: every member a plain file, root 0600, mtime 0, in the documented order.
        var output = listing.StandardOutput.Split($"{vm.Name}-files/state/nvram:\n");
        Assert.Equal(2, output.Length);
        Assert.Equal($"{vm.Name}_VARS.fd\n\n{vm.Name}-files/state/tpm:\ntpm2-00.permall\n", output[1]);
        var lines = output[0].TrimEnd('\n').Split('\n');
        Assert.All(lines, line => Assert.Matches(@"^-rw------- root/root +\d+ 1970-01-01 00:00 \S+$", line));
        var names = lines.Select(line => line.Split(' ')[^1]).ToList();
        Assert.Equal(["virtbackup/manifest.json", "virtbackup/domain.xml", $"state/nvram/{vm.Name}_VARS.fd"], names[..3]);
        Assert.Equal("virtbackup/trailer.json", names[^1]);
        Assert.Contains("state/tpm/tpm2-00.permall", names);
        Assert.Contains("disks/vda/extents-0000000000000000.txt", names);
        Assert.Contains("disks/vdb/0000000000000000.zst", names);
        // tar -xf: the NVRAM and TPM state files exactly as the source had them at the backup.
        var files = _work.Sub($"{vm.Name}-files");
        Assert.Equal(atFull.Nvram, await File.ReadAllBytesAsync(Path.Combine(files, "state", "nvram", $"{vm.Name}_VARS.fd")));
        SourceState.AssertSameFiles(atFull.TpmFiles, SourceState.ReadTree(Path.Combine(files, "state", "tpm")), "extracted TPM state");

        // The rebuild recipe, verbatim, applied to the full and then the incremental: each disk equals the source.
        var recipe = DocumentBlock("rebuild-recipe");
        Assert.Equal(Block(File.ReadAllText(Path.Combine(HostTools.RepositoryRoot, "docs", "FORMAT.md")), "rebuild-recipe"), recipe);
        foreach (var target in vm.DiskTargets)
        {
            var image = _work.Sub($"{target}.img");
            foreach (var stream in new[] { _work.Sub($"{vm.Name}-full.tar"), incremental })
            {
                var rebuilt = await RunBashAsync(recipe, new Dictionary<string, string?> { ["STREAM"] = stream, ["TARGET"] = target, ["IMAGE"] = image });
                Assert.True(rebuilt.ExitCode == 0, rebuilt.ToString());
            }

            var compare = await HostTools.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, atInc.RawDisks[target]]);
            Assert.True(compare.ExitCode == 0, $"rebuilt {target} differs from the source: {compare}");
            var cmp = await HostTools.RunAsync("cmp", [image, atInc.RawDisks[target]]);
            Assert.True(cmp.ExitCode == 0, cmp.ToString());
        }
    }

    /// <summary>The bash block between <c>&lt;!-- NAME:begin --&gt;</c> and <c>&lt;!-- NAME:end --&gt;</c> of docs/HOSTS.md.</summary>
    private static string DocumentBlock(string name) =>
        Block(File.ReadAllText(Path.Combine(HostTools.RepositoryRoot, "docs", "HOSTS.md")), name);

    private static string Block(string document, string name)
    {
        var match = Regex.Match(document, $@"<!-- {name}:begin -->\s*```bash\n(?<script>.*?)```\s*<!-- {name}:end -->", RegexOptions.Singleline);
        Assert.True(match.Success, $"no {name} block");
        return match.Groups["script"].Value;
    }

    /// <summary>bash -c SCRIPT in the work directory, with the real virtbackup first on PATH and its config.</summary>
    private Task<ToolResult> RunBashAsync(string script, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var environment = new Dictionary<string, string?>(_virtbackup.Environment())
        {
            ["PATH"] = $"{Path.GetDirectoryName(VirtBackupCli.ExecutablePath)}:{System.Environment.GetEnvironmentVariable("PATH")}",
            ["TZ"] = "UTC",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            environment[key] = value;
        }

        return HostTools.RunAsync("bash", ["-c", $"set -euo pipefail; cd '{_work.Path}'\n{script}"], environment);
    }
}
