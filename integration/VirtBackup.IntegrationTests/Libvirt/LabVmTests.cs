namespace VirtBackup.IntegrationTests.Libvirt;

[Collection(LabCollection.Name)]
public class LabVmTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_lab_vm_runs_with_an_nvram_file_and_swtpm_state()
    {
        await using var vm = await LabVm.CreateAsync();
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);

        Assert.Equal(DomainState.Running, domain.GetState().State);
        Assert.Equal(vm.Uuid, domain.Uuid);
        Assert.Equal(540_672, new FileInfo(vm.NvramPath).Length);
        Assert.Equal("libvirt-qemu:libvirt-qemu 600", await StatAsync(vm.NvramPath));
        var permall = Path.Combine(vm.TpmStateDirectory, "tpm2-00.permall");
        Assert.True(File.Exists(permall), $"{permall} is missing");
        Assert.Equal("tss:tss 600", await StatAsync(permall));
        Assert.Equal("tss:tss 700", await StatAsync(vm.TpmStateDirectory));
    }

    [Fact(Timeout = 60_000)]
    public async Task The_live_xml_of_a_lab_vm_parses_into_its_disks_nvram_and_tpm()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);

        var xml = DomainXml.Parse(domain.GetXml());

        Assert.Equal(vm.Name, xml.Name);
        Assert.Equal(vm.Uuid, xml.Uuid);
        Assert.Equal(
            [
                new DomainDisk(DiskDevice.Disk, DiskSourceType.File, "vda", "virtio", "qcow2", vm.DiskPath("vda"), null, null, false, false, "virtio-disk0"),
                new DomainDisk(DiskDevice.Disk, DiskSourceType.File, "vdb", "virtio", "qcow2", vm.DiskPath("vdb"), null, null, false, false, "virtio-disk1"),
            ],
            xml.Disks);
        Assert.Equal(new DomainLoader("/usr/share/OVMF/OVMF_CODE_4M.fd", "pflash", true, false), xml.Loader);
        Assert.Equal(new DomainNvram(vm.NvramPath, "/usr/share/OVMF/OVMF_VARS_4M.fd", "file"), xml.Nvram);
        Assert.Equal(new DomainTpm("tpm-crb", TpmBackendType.Emulator, "2.0", null, false, null, null, null, "tpm0"), xml.Tpm);
        Assert.Equal(vm.TpmStateDirectory, xml.TpmStateDirectory);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_filled_disk_holds_the_layout_and_an_injected_write_reaches_the_live_image()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        var layout = await vm.FillLayoutAsync(diskIndex: 1);
        Assert.Equal(
            [
                new LabRun(0, 1 << 20, 0x12),
                new LabRun(2 << 20, 1 << 20, null),
                new LabRun(4 << 20, 64 << 10, 0x22),
                new LabRun(8 << 20, 4 << 20, 0x32),
                new LabRun(63 << 20, 1 << 20, 0x42),
            ],
            layout);
        foreach (var run in layout)
        {
            await ReadLiveAsync(vm.DiskPath("vdb"), run.Pattern ?? 0, run.Offset, run.Length);
        }

        var node = await vm.InjectWriteAsync("vdb", "16M", "1M", "0x77");

        Assert.Equal("libvirt-1-format", node);
        await ReadLiveAsync(vm.DiskPath("vdb"), 0x77, 16 << 20, 1 << 20);
        await ReadLiveAsync(vm.DiskPath("vda"), 0x11, 0, 1 << 20);
    }

    /// <summary>Checks with qemu-io (-U: the image is in use) that a range of the live image holds one byte value.</summary>
    private static async Task ReadLiveAsync(string image, byte pattern, long offset, long length)
    {
        var output = await LabHost.RunAsync("qemu-io", ["-U", "-r", "-f", "qcow2", "-c", $"read -q -P 0x{pattern:x2} {offset} {length}", image]);
        Assert.True(output.Trim().Length == 0, $"{image} at {offset}+{length} is not all 0x{pattern:x2}: {output}");
    }

    private static async Task<string> StatAsync(string path) => (await LabHost.RunAsync("stat", ["-c", "%U:%G %a", path])).Trim();
}
