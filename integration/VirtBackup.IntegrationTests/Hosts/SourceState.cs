namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// A lab VM as it was at one backup's instant: a raw copy of each disk, its NVRAM and its TPM state files
/// (path relative to the state directory → bytes). <see cref="BackUpPausedAsync{T}"/> takes it: the VM is
/// suspended, the backup runs (virtbackup captures a paused VM and leaves it paused), the files are
/// copied, the VM resumes — so nothing, not even the firmware writing UEFI variables, changes in between.
/// </summary>
public sealed record SourceState(IReadOnlyDictionary<string, string> RawDisks, byte[] Nvram, IReadOnlyDictionary<string, byte[]> TpmFiles)
{
    public static async Task<(T Backup, SourceState Source)> BackUpPausedAsync<T>(LabVm vm, string directory, Func<Task<T>> backup)
    {
        Directory.CreateDirectory(directory);
        await Virsh("suspend", vm.Name);
        try
        {
            var result = await backup();
            Assert.Equal("paused", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", vm.Name])).Trim());
            var disks = new Dictionary<string, string>();
            foreach (var target in vm.DiskTargets)
            {
                var raw = Path.Combine(directory, $"{target}.raw");
                await LabHost.RunAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", vm.DiskPath(target), raw]);
                disks[target] = raw;
            }

            return (result, new SourceState(disks, await File.ReadAllBytesAsync(vm.NvramPath), ReadTree(vm.TpmStateDirectory)));
        }
        finally
        {
            await Virsh("resume", vm.Name);
        }
    }

    /// <summary>
    /// Asserts a restored VM equals this state: each disk (<paramref name="diskPath"/> of a target, in
    /// <paramref name="format"/>) per <c>qemu-img compare</c>, the NVRAM file and the TPM state directory byte for byte.
    /// </summary>
    public async Task AssertRestoredAsync(Func<string, string> diskPath, string nvramPath, string tpmStateDirectory, string format = "qcow2")
    {
        foreach (var (target, raw) in RawDisks)
        {
            var compare = await HostTools.RunAsync("qemu-img", ["compare", "-f", format, "-F", "raw", diskPath(target), raw]);
            Assert.True(compare.ExitCode == 0 && compare.StandardOutput.Trim() == "Images are identical.",
                $"restored disk {target} ({diskPath(target)}) differs from the source: {compare}");
        }

        var nvram = await File.ReadAllBytesAsync(nvramPath);
        Assert.True(Nvram.AsSpan().SequenceEqual(nvram), $"restored NVRAM {nvramPath} differs from the source");
        AssertSameFiles(TpmFiles, ReadTree(tpmStateDirectory), $"restored TPM state {tpmStateDirectory}");
    }

    /// <summary>
    /// Asserts <paramref name="vm"/> restored with <c>--target-root <paramref name="root"/></c> under its own name
    /// (images, NVRAM and TPM state at their usual paths below the root) equals this state.
    /// </summary>
    public Task AssertRestoredBelowAsync(string root, LabVm vm) =>
        AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");

    /// <summary>Asserts two relative-path → content maps hold the same files with the same bytes.</summary>
    public static void AssertSameFiles(IReadOnlyDictionary<string, byte[]> expected, IReadOnlyDictionary<string, byte[]> actual, string what)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (file, content) in expected)
        {
            Assert.True(content.AsSpan().SequenceEqual(actual[file]), $"{what}: {file} differs");
        }
    }

    /// <summary>Every file below <paramref name="directory"/> by its relative path.</summary>
    public static IReadOnlyDictionary<string, byte[]> ReadTree(string directory) =>
        Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .ToDictionary(file => Path.GetRelativePath(directory, file), File.ReadAllBytes, StringComparer.Ordinal);

    private static Task<string> Virsh(string command, string domain) =>
        LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", command, domain]);
}

/// <summary>What a (complete, verified) stream holds besides disk data: its manifest, NVRAM and TPM members.</summary>
public sealed record StreamContent(Manifest Manifest, byte[]? Nvram, IReadOnlyDictionary<string, byte[]> TpmFiles)
{
    /// <summary>Reads <paramref name="stream"/> with VirtBackup's own reader, which verifies every member and the trailer.</summary>
    public static async Task<StreamContent> ReadAsync(byte[] stream)
    {
        Manifest? manifest = null;
        byte[]? nvram = null;
        var tpm = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await foreach (var member in new BackupStreamReader(new MemoryStream(stream)).ReadAsync())
        {
            switch (member)
            {
                case ManifestMember m:
                    manifest = m.Manifest;
                    break;
                case NvramMember n:
                    nvram = n.Content.ToArray();
                    break;
                case TpmFileMember t:
                    tpm[t.RelativePath] = t.Content.ToArray();
                    break;
            }
        }

        return new StreamContent(manifest ?? throw new InvalidOperationException("no manifest"), nvram, tpm);
    }
}
