using System.Text;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Stream;
using VirtBackup.IntegrationTests.Hosts;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.Testing;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// Two independent chains of one lab VM (<c>backup --chain NAME</c>), interleaved with writes: each incremental carries
/// exactly the ranges written since its own chain's last backup, whatever the other chain took between, no backup of one
/// removes a checkpoint of the other, and each chain restores equal to the source at its own last backup. Running, and
/// shut off (the chains' bitmaps in the images, read by qemu-nbd).
/// </summary>
[Collection(LabCollection.Name)]
public sealed class NamedChainBackupTests : IDisposable
{
    private const int M = 1024 * 1024;

    private readonly TempDirectory _work = new();

    [Fact(Timeout = 240_000)]
    public async Task Two_interleaved_chains_of_a_running_domain_each_restore_equal_to_the_source_at_their_own_last_backup()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var aFull = await backups.BackupAsync("full", "--chain", "onsite");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x11");
        var bFull = await backups.BackupAsync("full", "--chain", "offsite");
        await vm.InjectWriteAsync("vda", "20M", "1M", "0x22");
        var aInc1 = await backups.BackupAsync("inc", "--chain", "onsite");
        await vm.InjectWriteAsync("vda", "24M", "1M", "0x33");
        var (bInc, bSource) = await SourceState.BackUpPausedAsync(vm, _work.Sub("b"), () => backups.BackupAsync("inc", "--chain", "offsite"));
        await vm.InjectWriteAsync("vda", "28M", "1M", "0x44");
        var (aInc2, aSource) = await SourceState.BackUpPausedAsync(vm, _work.Sub("a"), () => backups.BackupAsync("auto", "--chain", "onsite"));

        Assert.Equal(["onsite", "offsite", "onsite", "offsite", "onsite"], new[] { aFull, bFull, aInc1, bInc, aInc2 }.Select(s => s.Manifest.Chain));
        Assert.Equal((aFull.Manifest.Checkpoint, aInc1.Manifest.Checkpoint), (aInc1.Manifest.ParentCheckpoint, aInc2.Manifest.ParentCheckpoint));
        Assert.Equal(bFull.Manifest.Checkpoint, bInc.Manifest.ParentCheckpoint);
        Assert.Equal([new DiskExtent(16 * M, M, false), new DiskExtent(20 * M, M, false)], aInc1.Maps["vda"].Extents);
        Assert.Equal([new DiskExtent(20 * M, M, false), new DiskExtent(24 * M, M, false)], bInc.Maps["vda"].Extents);
        Assert.Equal([new DiskExtent(24 * M, M, false), new DiskExtent(28 * M, M, false)], aInc2.Maps["vda"].Extents);
        Assert.Equal(new[] { aFull, bFull, aInc1, bInc, aInc2 }.Select(s => s.Manifest.Checkpoint!), BackupFixture.Observe(vm.Name).Checkpoints);
        Assert.StartsWith($"virtbackup-onsite-{aFull.Manifest.ChainId}-", aInc2.Manifest.Checkpoint);

        await RestoreChainAsync(vm, "a", aFull, aInc1, aInc2);
        await aSource.AssertRestoredAsync(target => Image(vm, "a", target), Nvram(vm, "a"), Tpm(vm, "a"));
        await RestoreChainAsync(vm, "b", bFull, bInc);
        await bSource.AssertRestoredAsync(target => Image(vm, "b", target), Nvram(vm, "b"), Tpm(vm, "b"));
        var mixed = await RestoreAsync(aInc2, "b");
        Assert.Equal(4, mixed.ExitCode);
        Assert.Contains("it is a backup of chain 'onsite', but", mixed.StandardError);
        Assert.Contains("was restored from chain 'offsite'", mixed.StandardError);
        var listed = await VirtBackupCli.RunAsync(["list"], new MemoryStream(bInc.Bytes));
        Assert.Contains("\nchain-name   offsite\n", Encoding.UTF8.GetString(listed.StandardOutput));
    }

    [Fact(Timeout = 240_000)]
    public async Task Two_chains_of_a_shut_off_domain_keep_each_others_bitmaps_and_each_incremental_holds_every_change_since_its_own_last_backup()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var aFull = await backups.BackupAsync("full", "--chain", "onsite");
        var bFull = await backups.BackupAsync("full", "--chain", "offsite");
        await LabHost.RunAsync("virsh", ["-q", "destroy", vm.Name]);
        await QemuIoWriteAsync(vm, "0x61 4M 1M");
        var bInc = await backups.BackupAsync("inc", "--chain", "offsite");
        await QemuIoWriteAsync(vm, "0x62 8M 1M");
        var bFull2 = await backups.BackupAsync("full", "--chain", "offsite");
        await QemuIoWriteAsync(vm, "0x63 12M 1M");

        var aInc = await backups.BackupAsync("inc", "--chain", "onsite");

        Assert.Equal([new DiskExtent(4 * M, M, false)], bInc.Maps["vda"].Extents);
        Assert.Equal(aFull.Manifest.Checkpoint, aInc.Manifest.ParentCheckpoint);
        Assert.Equal([new DiskExtent(4 * M, M, false), new DiskExtent(8 * M, M, false), new DiskExtent(12 * M, M, false)], aInc.Maps["vda"].Extents);
        var names = new[] { aFull.Manifest.Checkpoint!, bFull2.Manifest.Checkpoint!, aInc.Manifest.Checkpoint! };
        Assert.Equal(names.Order(StringComparer.Ordinal), BackupFixture.Observe(vm.Name).Checkpoints.Order(StringComparer.Ordinal));
        Assert.Equal(names.Order(StringComparer.Ordinal).Select(n => new ImageBitmap(n, Enabled: true, InUse: false)),
            (await QemuImg.InfoAsync(vm.DiskPath("vda"), forceShare: false, CancellationToken.None)).Bitmaps.OrderBy(b => b.Name, StringComparer.Ordinal));
        Assert.DoesNotContain(bFull.Manifest.Checkpoint, BackupFixture.Observe(vm.Name).Checkpoints);
        await RestoreChainAsync(vm, "a", aFull, aInc);
        Assert.Equal("Images are identical.", (await LabHost.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", Image(vm, "a", "vda"), vm.DiskPath("vda")])).Trim());
    }

    public void Dispose() => _work.Dispose();

    private static Task QemuIoWriteAsync(LabVm vm, string pattern) =>
        LabHost.RunAsync("qemu-io", ["-f", "qcow2", "-c", $"write -P {pattern}", vm.DiskPath("vda")]);

    private async Task RestoreChainAsync(LabVm vm, string root, params ParsedStream[] streams)
    {
        foreach (var stream in streams)
        {
            var result = await RestoreAsync(stream, root);
            Assert.True(result.ExitCode == 0, $"restore of {stream.Manifest.Checkpoint} of {vm.Name} into {root}: {result}");
        }
    }

    private Task<CliResult> RestoreAsync(ParsedStream stream, string root) =>
        VirtBackupCli.RunAsync(["restore", "--target-root", _work.Sub(root)], new MemoryStream(stream.Bytes));

    private string Image(LabVm vm, string root, string target) => $"{_work.Sub(root)}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2";

    private string Nvram(LabVm vm, string root) => $"{_work.Sub(root)}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd";

    private string Tpm(LabVm vm, string root) => $"{_work.Sub(root)}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2";
}
