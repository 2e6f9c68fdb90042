namespace VirtBackup.IntegrationTests.Remote;

/// <summary>
/// A lab VM backed up and restored through <c>qemu+ssh://root@127.0.0.1/system</c>: the "remote" hypervisor is
/// this machine reached over the loopback sshd, so what went over SSH can be compared with the files directly.
/// The logs prove the remote path was taken (the NBD socket forwarded over SSH, the state files read over SSH,
/// qemu-nbd run through SSH for the restore).
/// </summary>
[Collection(LabCollection.Name)]
public sealed class RemoteLabTests : IDisposable
{
    private const string Host = "root@127.0.0.1:22";
    private static readonly string Uri = SshLab.RootLibvirtUri;
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-remote-").FullName;
    private readonly List<string> _rawImages = [];

    [Fact(Timeout = 240_000)]
    public async Task A_vm_backed_up_over_ssh_and_restored_there_under_a_new_name_equals_the_source_disks_nvram_and_tpm_state()
    {
        await SshLab.EnsureAsync();
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        await using var copy = new RestoredLabDomain($"{vm.Name}-r");
        await using var rawCopy = new RestoredLabDomain($"{vm.Name}-t");
        _rawImages.AddRange(vm.DiskTargets.Select(t => RawImage(rawCopy.Name, t)));

        var full = await BackupAsync(vm, "--level", "full", "--log-level", "debug");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "8M", "1M", "zero");
        var inc = await BackupAsync(vm, viaEnvironment: true, "--level", "inc");
        // Paused (by us, so the capture does not pause it again) the firmware cannot touch the NVRAM and TPM state
        // during and after this backup: the files as they are afterwards are what the backup must hold.
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "suspend", vm.Name]);
        var tcp = await BackupAsync(vm, "--level", "copy", "--nbd-transport", "tcp", "--nbd-port", SshLab.FreePort());
        var nvramNow = await File.ReadAllBytesAsync(vm.NvramPath);
        var tpmNow = Directory.EnumerateFiles(vm.TpmStateDirectory).Order(StringComparer.Ordinal)
            .ToDictionary(p => Path.GetFileName(p), File.ReadAllBytes);
        // The guest is firmware only: nothing but the injected writes changes the disks, so a copy now is the backups' instant.
        foreach (var target in vm.DiskTargets)
        {
            await LabHost.RunAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "qcow2", vm.DiskPath(target), Source(target)]);
        }

        var restoredFull = await RestoreAsync(full.Bytes, "--as", copy.Name, "--define");
        var restoredInc = await RestoreAsync(inc.Bytes, "--as", copy.Name, "--define");
        var restoredRaw = await RestoreAsync(tcp.Bytes, "--as", rawCopy.Name, "--format", "raw", "--define");

        // Backups: the remote path, and the same content as the disks and state files.
        foreach (var (stream, log) in new[] { (full.Stream, full.Log), (inc.Stream, inc.Log) })
        {
            Assert.Contains($"connected to {Host} over SSH", log);
            Assert.True(log.IndexOf("connected to", StringComparison.Ordinal) < log.IndexOf("captured ", StringComparison.Ordinal), "SSH connected only after the pause");
            Assert.Matches($@"the backup job's NBD socket /run/virtbackup/{vm.Uuid}-\w+/nbd\.sock on {Host} is forwarded over SSH to /\S+\.sock", log);
            Assert.Contains($"read {vm.NvramPath} and {vm.TpmStateDirectory} on {Host} over SSH: 3 files", log);
            Assert.Equal((vm.Name, 2), (stream.Manifest.DomainName, stream.Manifest.Disks.Count));
            Assert.True(stream.Manifest.PauseWindowMs > 0);
        }

        // The scratch images: made on the host by one remote command before the pause, removed after the job.
        Assert.Matches($@"made 2 scratch images before the pause: /var/lib/libvirt/images/virtbackup-{vm.Uuid}-vda\.scratch, /var/lib/libvirt/images/virtbackup-{vm.Uuid}-vdb\.scratch", full.Log);
        Assert.True(
            full.Log.IndexOf("made 2 scratch images", StringComparison.Ordinal) < full.Log.IndexOf("captured ", StringComparison.Ordinal),
            "the scratch images were made after the pause");
        Assert.Empty(Directory.EnumerateFiles(Core.Backup.BackupOptions.DefaultScratchDirectory, $"virtbackup-{vm.Uuid}-*.scratch"));
        Assert.Equal(BackupLevel.Inc, inc.Stream.Manifest.Level);
        Assert.Contains("disk data comes from libvirt's NBD server on 127.0.0.1:", tcp.Log);
        Assert.DoesNotContain("forwarded over SSH", tcp.Log);
        Assert.Contains($"read {vm.NvramPath} and {vm.TpmStateDirectory} on {Host} over SSH", tcp.Log);
        Assert.Equal(nvramNow, tcp.Stream.Nvram);
        Assert.Equal(tpmNow, tcp.Stream.TpmFiles);

        // Restores: the remote path, then the restored domains equal the source.
        Assert.Equal((0, 0, 0), (restoredFull.ExitCode, restoredInc.ExitCode, restoredRaw.ExitCode));
        foreach (var log in new[] { restoredFull.StandardError, restoredInc.StandardError, restoredRaw.StandardError })
        {
            Assert.Matches($@"qemu-nbd serves /var/lib/libvirt/images/\.virtbackup-restore-\w+/vd[ab]\.\S+ on {Host}: its socket /\S+ is forwarded over SSH to /\S+", log);
        }

        Assert.Contains($"as {copy.Name} (", restoredInc.StandardError);
        Assert.Contains("changes, through an overlay", restoredInc.StandardError);
        foreach (var target in vm.DiskTargets)
        {
            Assert.Equal("Images are identical.", await CompareAsync("qcow2", copy.DiskPath(target), Source(target)));
            Assert.Equal("Images are identical.", await CompareAsync("raw", RawImage(rawCopy.Name, target), Source(target)));
            var allocated = long.Parse((await LabHost.RunAsync("stat", ["-c", "%b", RawImage(rawCopy.Name, target)])).Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
            Assert.True(allocated < vm.DiskSizeBytes / 2, $"the raw image of {target} is not thin: {allocated} bytes allocated");
        }

        using var libvirt = LibvirtConnection.Open();
        foreach (var (name, stream) in new[] { (copy.Name, inc.Stream), (rawCopy.Name, tcp.Stream) })
        {
            using var restored = libvirt.LookupByName(name);
            var tpmDirectory = $"/var/lib/libvirt/swtpm/{restored.Uuid}/tpm2";
            var nvramPath = $"/var/lib/libvirt/qemu/nvram/{name}_VARS.fd";
            Assert.NotEqual(vm.Uuid, restored.Uuid);
            Assert.Equal(stream.Nvram, await File.ReadAllBytesAsync(nvramPath));
            Assert.Equal("root:root 600", await StatAsync(nvramPath));
            Assert.Equal(stream.TpmFiles.Keys, Directory.EnumerateFiles(tpmDirectory).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal));
            foreach (var (file, content) in stream.TpmFiles)
            {
                Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(tpmDirectory, file)));
                Assert.Equal("tss:tss 600", await StatAsync(Path.Combine(tpmDirectory, file)));
            }

            Assert.Equal("tss:tss 700", await StatAsync(tpmDirectory));
            Assert.Equal("root:root 711", await StatAsync(Path.GetDirectoryName(tpmDirectory)!));
            Assert.Contains($"<source file='{(name == copy.Name ? copy.DiskPath("vda") : RawImage(name, "vda"))}'", restored.GetXml(), StringComparison.Ordinal);
        }

        Assert.Equal("root:root 600", await StatAsync(copy.DiskPath("vda")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(LabVm.ImagesDirectory, ".virtbackup-restore-*"));
    }

    [Fact(Timeout = 120_000)]
    public async Task A_remote_user_who_cannot_read_the_state_files_is_refused_before_the_vm_is_paused()
    {
        // libvirt refuses vbtssh here (no polkit), so libvirt goes through root's URI and the host files through vbtssh's SSH session.
        await SshLab.EnsureAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        using var libvirt = LibvirtConnection.Open(Uri);
        await using var host = new SshHypervisorHost(await SshLab.ConnectAsync(SshLab.User));
        var options = new BackupOptions(vm.Name, RequestedLevel.Full, [], StreamWriterOptions.Default, FreezeMode.Auto, Path.Combine(_work, "state"), BackupOptions.DefaultScratchDirectory);
        var output = new MemoryStream();

        var refused = await Assert.ThrowsAsync<PreflightException>(
            () => new BackupRun(libvirt, host, Serilog.Core.Logger.None).RunAsync(options, output, CancellationToken.None));
        var capture = new ConsistentCapture(host.Files, new CaptureMarkers(_work), Serilog.Core.Logger.None);
        var tpm = await Assert.ThrowsAsync<PreflightException>(
            () => capture.PreflightAsync(new StateLocation(null, vm.TpmStateDirectory, null, QemuConf.Defaults), CancellationToken.None));

        Assert.StartsWith($"cannot read the UEFI NVRAM file '{vm.NvramPath}' on vbtssh@127.0.0.1:22", refused.Message);
        Assert.EndsWith("the VM was not touched", refused.Message);
        Assert.Equal(
            $"cannot read the TPM state directory '{vm.TpmStateDirectory}' on vbtssh@127.0.0.1:22: the remote user vbtssh cannot read "
            + $"'{vm.TpmStateDirectory}'. swtpm keeps it as user 'tss' (group 'tss', directory mode 0700, so membership in the group is not enough). "
            + "Run virtbackup as root, or as 'tss' (docs/RELIABILITY.md, non-root backups); the VM was not touched",
            tpm.Message);
        Assert.Equal(0, output.Length);
        using var domain = libvirt.LookupByName(vm.Name);
        Assert.Equal(DomainRunningReason.Booted, domain.GetState().RunningReason); // never paused: a resume would make it "unpaused"
        Assert.False(domain.GetJobStats().IsActive);
        Assert.Empty(domain.ListCheckpoints());
    }

    public void Dispose()
    {
        foreach (var image in _rawImages)
        {
            File.Delete(image);
        }

        Directory.Delete(_work, recursive: true);
    }

    private static string RawImage(string name, string target) => $"{LabVm.ImagesDirectory}/{name}-{target}.img";


    private static async Task<string> CompareAsync(string format, string image, string source) =>
        (await LabHost.RunAsync("qemu-img", ["compare", "-f", format, "-F", "qcow2", image, source])).Trim();

    private static async Task<string> StatAsync(string path) => (await LabHost.RunAsync("stat", ["-c", "%U:%G %a", path])).Trim();

    private static Task<CliResult> RestoreAsync(byte[] stream, params string[] options) =>
        VirtBackupCli.RunAsync(["restore", "--connect", Uri, .. options], new MemoryStream(stream));

    private string Source(string target) => Path.Combine(_work, $"source-{target}.qcow2");

    private Task<(ParsedStream Stream, byte[] Bytes, string Log)> BackupAsync(LabVm vm, params string[] options) =>
        BackupAsync(vm, viaEnvironment: false, options);

    /// <param name="viaEnvironment">The URI in $VIRTBACKUP_CONNECT instead of --connect.</param>
    private async Task<(ParsedStream Stream, byte[] Bytes, string Log)> BackupAsync(LabVm vm, bool viaEnvironment, params string[] options)
    {
        string[] connect = viaEnvironment ? [] : ["--connect", Uri];
        var result = await VirtBackupCli.RunAsync(
            ["backup", .. connect, "--domain", vm.Name, "--state-dir", Path.Combine(_work, "state"), .. options],
            environment: viaEnvironment ? new Dictionary<string, string?> { ["VIRTBACKUP_CONNECT"] = Uri } : null);
        Assert.True(result.ExitCode == 0, $"backup {string.Join(' ', options)} failed ({result.ExitCode}): {result.StandardError}");
        return (await ParsedStream.ReadAsync(result.StandardOutput), result.StandardOutput, result.StandardError);
    }
}
