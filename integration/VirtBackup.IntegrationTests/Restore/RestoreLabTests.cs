using System.Text;

namespace VirtBackup.IntegrationTests.Restore;

/// <summary>
/// Real backups of a lab VM restored with the real executable: a full and two incrementals (guest-like writes
/// between them) restored under a new name equal the source at the last backup, state files included, and the
/// copy boots with its TPM state; streams out of order or of another chain are refused.
/// </summary>
[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public sealed class RestoreLabTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-restore-").FullName;

    [Fact(Timeout = 240_000)]
    public async Task A_full_and_two_incrementals_restored_under_a_new_name_equal_the_source_and_the_copy_boots_with_its_tpm_state()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        await using var copy = new RestoredLabDomain($"{vm.Name}-r");
        var full = await BackupAsync(vm, "full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "8M", "1M", "zero");
        var inc1 = await BackupAsync(vm, "inc");
        await vm.InjectWriteAsync("vda", "1M", "2M", "0x99");
        await vm.InjectWriteAsync("vdb", "30M", "512K", "0x55");
        var inc2 = await BackupAsync(vm, "inc");
        // The guest is firmware only: nothing but the injected writes changes the disks, so a copy now is the last backup's instant.
        foreach (var target in vm.DiskTargets)
        {
            await LabHost.RunAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "qcow2", vm.DiskPath(target), Source(target)]);
        }

        var inPlace = await RestoreAsync(full);
        var first = await RestoreAsync(full, "--as", copy.Name, "--define");
        var outOfOrder = await RestoreAsync(inc2, "--as", copy.Name);
        var second = await RestoreAsync(inc1, "--as", copy.Name, "--define");
        var third = await RestoreAsync(inc2, "--as", copy.Name, "--define");

        Assert.Equal(4, inPlace.ExitCode);
        Assert.Contains($"libvirt domain '{vm.Name}' is running: shut it down before restoring over it", inPlace.StandardError);
        Assert.Equal((0, 4, 0, 0), (first.ExitCode, outOfOrder.ExitCode, second.ExitCode, third.ExitCode));
        var fullManifest = await ManifestAsync(full);
        var inc2Manifest = await ManifestAsync(inc2);
        Assert.Contains($"it continues from checkpoint '{inc2Manifest.ParentCheckpoint}', but the last checkpoint applied to '{copy.Name}' is '{fullManifest.Checkpoint}'",
            outOfOrder.StandardError);
        foreach (var target in vm.DiskTargets)
        {
            Assert.Equal("Images are identical.", (await LabHost.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", copy.DiskPath(target), Source(target)])).Trim());
        }

        var state = await Hosts.StreamContent.ReadAsync(inc2);
        var (nvram, tpm) = (state.Nvram!, state.TpmFiles);
        using var libvirt = LibvirtConnection.Open();
        using var restored = libvirt.LookupByName(copy.Name);
        var tpmDirectory = $"/var/lib/libvirt/swtpm/{restored.Uuid}/tpm2";
        Assert.NotEqual(vm.Uuid, restored.Uuid);
        Assert.Equal(nvram, await File.ReadAllBytesAsync(copy.NvramPath));
        Assert.Equal(tpm.Keys.Order(), Directory.EnumerateFiles(tpmDirectory).Select(Path.GetFileName).Order());
        foreach (var (file, content) in tpm)
        {
            Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(tpmDirectory, file)));
            Assert.Equal("tss:tss 600", await StatAsync(Path.Combine(tpmDirectory, file)));
        }

        Assert.Equal("tss:tss 700", await StatAsync(tpmDirectory));
        Assert.Equal("root:root 600", await StatAsync(copy.NvramPath));
        Assert.Empty(Directory.EnumerateFileSystemEntries(LabVm.ImagesDirectory, ".virtbackup-restore-*"));

        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "start", copy.Name]);
        await Task.Delay(TimeSpan.FromSeconds(5));

        Assert.Equal(DomainState.Running, restored.GetState().State);
        var swtpm = await LabHost.RunAsync("pgrep", ["-a", "swtpm"]);
        Assert.Contains($"dir={tpmDirectory}", swtpm);
        Assert.True(File.Exists(copy.SwtpmLogPath), $"{copy.SwtpmLogPath} is missing: swtpm did not start");
        var log = await File.ReadAllTextAsync(copy.SwtpmLogPath);
        Assert.DoesNotContain("error", log, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("manufacturing", log, StringComparison.OrdinalIgnoreCase); // the restored state was used, not a new one
    }

    [Fact(Timeout = 180_000)]
    public async Task An_incremental_of_another_chain_is_refused_and_real_streams_list_and_verify()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        var name = $"{vm.Name}-r";
        var full = await BackupAsync(vm, "full");
        var otherFull = await BackupAsync(vm, "full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var otherInc = await BackupAsync(vm, "inc");
        var root = Path.Combine(_work, "root");

        var restored = await RestoreAsync(full, "--as", name, "--target-root", root);
        var refused = await RestoreAsync(otherInc, "--as", name, "--target-root", root);
        var verified = await RunAsync(["verify"], otherFull);
        var truncated = await RunAsync(["verify"], otherInc[..(otherInc.Length / 2)]);
        var listed = await RunAsync(["list"], otherInc);

        Assert.Equal(0, restored.ExitCode);
        Assert.Equal(4, refused.ExitCode);
        var (chain, otherChain) = ((await ManifestAsync(full)).ChainId, (await ManifestAsync(otherInc)).ChainId);
        Assert.NotEqual(chain, otherChain);
        Assert.Contains($"(chain '{otherChain}'", refused.StandardError);
        Assert.Contains($"it belongs to another chain than '{name}'", refused.StandardError);
        Assert.Contains($"of chain '{chain}'", refused.StandardError);
        Assert.Equal((0, 6), (verified.ExitCode, truncated.ExitCode));
        Assert.Contains("it is truncated", truncated.StandardError);
        Assert.Equal(0, listed.ExitCode);
        var lines = Encoding.UTF8.GetString(listed.StandardOutput).Split('\n');
        Assert.Equal([$"domain       {vm.Name}", $"uuid         {vm.Uuid}", "level        inc"], lines[..3]);
        Assert.Equal("      STORED         SIZE  MEMBER", lines[16]);
        Assert.StartsWith("complete: ", lines[^2]);
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Source(string target) => Path.Combine(_work, $"source-{target}.qcow2");

    private async Task<byte[]> BackupAsync(LabVm vm, string level)
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", vm.Name, "--level", level, "--state-dir", Path.Combine(_work, "state")]);
        Assert.True(result.ExitCode == 0, $"backup --level {level} failed ({result.ExitCode}): {result.StandardError}");
        return result.StandardOutput;
    }

    private static Task<CliResult> RestoreAsync(byte[] stream, params string[] options) => RunAsync(["restore", .. options], stream);

    private static Task<CliResult> RunAsync(string[] args, byte[] stream) => VirtBackupCli.RunAsync(args, new MemoryStream(stream));

    private static async Task<Manifest> ManifestAsync(byte[] stream)
    {
        await foreach (var member in new BackupStreamReader(new MemoryStream(stream), ReaderOptions.ListOnly).ReadAsync())
        {
            if (member is ManifestMember m)
            {
                return m.Manifest;
            }
        }

        throw new InvalidOperationException("no manifest");
    }

    private static async Task<string> StatAsync(string path) => (await LabHost.RunAsync("stat", ["-c", "%U:%G %a", path])).Trim();
}
