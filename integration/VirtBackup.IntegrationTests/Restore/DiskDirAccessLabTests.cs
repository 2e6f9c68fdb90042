namespace VirtBackup.IntegrationTests.Restore;

/// <summary>
/// A restore into a --disk-dir that QEMU cannot reach (a 0700 directory from mktemp -d, issue 10 defect 4) used to
/// define the domain and leave it failing at virsh start with libvirt's permission error; now the restore refuses
/// with --define (exit 4, naming the directory and the chmod), warns without, and once QEMU may enter the domain starts.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class DiskDirAccessLabTests
{
    [Fact(Timeout = 240_000)]
    public async Task A_restore_into_a_private_mktemp_directory_is_refused_with_define_warned_without_and_starts_once_qemu_may_enter()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "16M");
        await using var copy = new RestoredLabDomain($"{vm.Name}-p");
        var directory = (await LabHost.RunAsync("mktemp", ["-d", "/tmp/vbt-diskdir-XXXXXX"])).Trim();
        var state = Directory.CreateTempSubdirectory("vbt-diskdir-state-").FullName;
        try
        {
            var stream = await BackupAsync(vm, state);
            var qemuUid = (await LabHost.RunAsync("id", ["-u", "libvirt-qemu"])).Trim();
            var refused = await RestoreAsync(stream, "--as", copy.Name, "--disk-dir", directory, "--define");
            var refusedLeft = Directory.EnumerateFileSystemEntries(directory).ToList();
            var refusedDefined = IsDefined(copy.Name);
            var warned = await RestoreAsync(stream, "--as", copy.Name, "--disk-dir", directory);
            await LabHost.RunAsync("chmod", ["o+x", directory]);
            var accepted = await RestoreAsync(stream, "--as", copy.Name, "--disk-dir", directory, "--define", "--force");
            await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "start", copy.Name]);

            var problem = $"and cannot enter '{directory}' (owner 0:0, mode 0700: no x for others), so a domain whose disks are in '{directory}' would not start. "
                + $"Run chmod o+x {directory} to let it in, or restore with --disk-dir into a directory QEMU can reach (default /var/lib/libvirt/images)";
            Assert.True(refused.ExitCode == 4, $"exit {refused.ExitCode}: {refused.StandardError}");
            Assert.Contains($"QEMU runs as libvirt-qemu (uid {qemuUid}, groups ", refused.StandardError);
            Assert.Contains(problem + ". Nothing was written", refused.StandardError);
            Assert.Empty(refusedLeft);
            Assert.False(refusedDefined, $"{copy.Name} was defined by the refused restore");
            Assert.True(warned.ExitCode == 0, $"exit {warned.ExitCode}: {warned.StandardError}");
            Assert.Contains(problem + ". The restore goes on (without --define)", warned.StandardError);
            Assert.True(accepted.ExitCode == 0, $"exit {accepted.ExitCode}: {accepted.StandardError}");
            Assert.DoesNotContain("cannot enter", accepted.StandardError);
            Assert.Equal("running", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", copy.Name])).Trim());
        }
        finally
        {
            await copy.DisposeAsync();
            Directory.Delete(directory, recursive: true);
            Directory.Delete(state, recursive: true);
        }
    }

    private static bool IsDefined(string name)
    {
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.TryLookupByName(name);
        return domain is not null;
    }

    private static async Task<byte[]> BackupAsync(LabVm vm, string stateDirectory)
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", vm.Name, "--level", "copy", "--state-dir", stateDirectory]);
        Assert.True(result.ExitCode == 0, $"backup --level copy failed ({result.ExitCode}): {result.StandardError}");
        return result.StandardOutput;
    }

    private static Task<CliResult> RestoreAsync(byte[] stream, params string[] options) =>
        VirtBackupCli.RunAsync(["restore", .. options], new MemoryStream(stream));
}
