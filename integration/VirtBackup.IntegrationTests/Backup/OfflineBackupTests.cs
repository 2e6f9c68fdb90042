namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// Backups of a shut-off lab VM: its disks read through qemu-nbd, an incremental from the persistent bitmaps libvirt
/// left in the images, the next checkpoint added to them (a bitmap each, libvirt's record redefined) only when the
/// stream completed. Writes while the domain is off go straight into the image with qemu-io.
/// </summary>
[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public sealed class OfflineBackupTests : IDisposable
{
    private const int M = 1024 * 1024;

    private readonly string _work = Directory.CreateTempSubdirectory("vbt-offline-").FullName;

    [Fact(Timeout = 300_000)]
    public async Task An_incremental_of_a_shut_off_domain_carries_exactly_what_was_written_while_it_was_off_and_the_next_running_incremental_continues_from_it()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await ShutOffAsync(vm);
        await WriteOfflineAsync(vm, "write -P 0x66 4M 1M");

        var offline = await backups.BackupAsync("auto");

        Assert.Equal(
            (BackupLevel.Inc, full.Manifest.Checkpoint, full.Manifest.ChainId, ChainState.CheckpointName(full.Manifest.ChainId!, 2), 0L, FreezeState.Off),
            (offline.Manifest.Level, offline.Manifest.ParentCheckpoint, offline.Manifest.ChainId, offline.Manifest.Checkpoint, offline.Manifest.PauseWindowMs, offline.Manifest.Freeze));
        Assert.Equal([new DiskExtent(4 * M, M, false)], offline.Maps["vda"].Extents);
        Assert.Equal([4L * M], offline.Data["vda"].Keys);
        Assert.True(offline.Data["vda"][4 * M].Length == M && offline.Data["vda"][4 * M].All(b => b == 0x66));
        AssertShutOffWith(vm, full.Manifest.Checkpoint!, offline.Manifest.Checkpoint!);
        Assert.Equal([Recording(full.Manifest.Checkpoint!), Recording(offline.Manifest.Checkpoint!)], await BitmapsAsync(vm));
        Assert.Equal(0, (await RestoreAsync(full)).ExitCode);
        Assert.Equal(0, (await RestoreAsync(offline)).ExitCode);
        Assert.Equal("Images are identical.", await CompareWithRestoredAsync(vm));

        await LabHost.RunAsync("virsh", ["-q", "start", vm.Name]);
        await vm.InjectWriteAsync("vda", "20M", "1M", "0x77");
        var running = await backups.BackupAsync("auto");
        await ShutOffAsync(vm);

        Assert.Equal((BackupLevel.Inc, offline.Manifest.Checkpoint), (running.Manifest.Level, running.Manifest.ParentCheckpoint));
        Assert.Equal([new DiskExtent(20 * M, M, false)], running.Maps["vda"].Extents);
        Assert.Equal([full.Manifest.Checkpoint!, offline.Manifest.Checkpoint!, running.Manifest.Checkpoint!], Checkpoints(vm));
        Assert.Equal(0, (await RestoreAsync(running)).ExitCode);
        Assert.Equal("Images are identical.", await CompareWithRestoredAsync(vm));
    }

    [Fact(Timeout = 180_000)]
    public async Task A_shut_off_incremental_whose_consumer_closes_stdout_early_leaves_checkpoints_and_bitmaps_as_they_were_and_the_next_incremental_has_every_change()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await ShutOffAsync(vm);
        await WriteOfflineAsync(vm, "write -P 0x44 16M 8M");

        var shell = await Cli.Wrap("bash")
            .WithArguments(["-c", $"'{VirtBackupCli.ExecutablePath}' backup --domain {vm.Name} --state-dir '{backups.StateDirectory}' --compression none 2>/dev/null | head -c 4096 >/dev/null; echo ${{PIPESTATUS[0]}}"])
            .ExecuteBufferedAsync();

        Assert.Equal("7", shell.StandardOutput.Trim());
        AssertShutOffWith(vm, full.Manifest.Checkpoint!);
        Assert.Equal([Recording(full.Manifest.Checkpoint!)], await BitmapsAsync(vm));
        var next = await backups.BackupAsync("auto");
        Assert.Equal(
            (BackupLevel.Inc, full.Manifest.Checkpoint, ChainState.CheckpointName(full.Manifest.ChainId!, 2)),
            (next.Manifest.Level, next.Manifest.ParentCheckpoint, next.Manifest.Checkpoint));
        Assert.Equal([new DiskExtent(16 * M, 8 * M, false)], next.Maps["vda"].Extents);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_checkpoint_a_failed_run_left_is_removed_with_its_bitmaps_while_the_domain_is_off_and_the_incremental_still_has_every_change()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "8M", "1M", "0x31");
        var leftover = ChainState.CheckpointName(full.Manifest.ChainId!, 2);
        await LabHost.RunAsync("virsh", ["-q", "checkpoint-create-as", vm.Name, "--name", leftover]); // as a run killed mid-stream leaves it
        await ShutOffAsync(vm);

        var result = await backups.CliAsync("auto");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"removed checkpoint {leftover} of {vm.Name}: no completed stream carried it", result.StandardError);
        var inc = await ParsedStream.ReadAsync(result.StandardOutput);
        Assert.Equal((BackupLevel.Inc, full.Manifest.Checkpoint, leftover), (inc.Manifest.Level, inc.Manifest.ParentCheckpoint, inc.Manifest.Checkpoint));
        Assert.Equal([new DiskExtent(8 * M, M, false)], inc.Maps["vda"].Extents);
        AssertShutOffWith(vm, full.Manifest.Checkpoint!, leftover);
        Assert.Equal([Recording(full.Manifest.Checkpoint!), Recording(leftover)], await BitmapsAsync(vm));
    }

    [Fact(Timeout = 180_000)]
    public async Task Repair_of_a_shut_off_domain_removes_a_leftover_checkpoint_and_an_orphan_bitmap_of_ours_and_keeps_the_chain_and_foreign_bitmaps()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "8M", "1M", "0x32");
        var leftover = ChainState.CheckpointName(full.Manifest.ChainId!, 2);
        await LabHost.RunAsync("virsh", ["-q", "checkpoint-create-as", vm.Name, "--name", leftover]); // a run killed mid-stream
        await ShutOffAsync(vm);
        // A run killed between qemu-img's bitmap add and libvirt's redefinition leaves a bitmap no checkpoint names.
        var orphan = ChainState.CheckpointName(ChainState.NewChainId(), 1);
        await LabHost.RunAsync("qemu-img", ["bitmap", "-f", "qcow2", "--add", "--enable", vm.DiskPath("vda"), orphan]);
        await LabHost.RunAsync("qemu-img", ["bitmap", "-f", "qcow2", "--add", "--enable", vm.DiskPath("vda"), "someone-elses"]);

        var repair = await VirtBackupCli.RunAsync(["repair", "--domain", vm.Name, "--state-dir", backups.StateDirectory]);

        Assert.True(repair.ExitCode == 0, $"repair exited {repair.ExitCode}: {repair.StandardError}");
        Assert.Contains($"removed checkpoint {leftover} of {vm.Name}: no completed stream carried it", repair.StandardError);
        Assert.Contains($"removed bitmap {orphan} from the disks of {vm.Name}: an interrupted run added it, no checkpoint names it", repair.StandardError);
        AssertShutOffWith(vm, full.Manifest.Checkpoint!);
        Assert.Equal([Recording(full.Manifest.Checkpoint!), Recording("someone-elses")], await BitmapsAsync(vm));
        var inc = await backups.BackupAsync("auto");
        Assert.Equal((BackupLevel.Inc, full.Manifest.Checkpoint), (inc.Manifest.Level, inc.Manifest.ParentCheckpoint));
        Assert.Equal([new DiskExtent(8 * M, M, false)], inc.Maps["vda"].Extents);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_shut_off_domain_whose_disk_lost_the_bitmap_of_the_last_checkpoint_gets_a_full_backup_that_says_why()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await ShutOffAsync(vm);
        await LabHost.RunAsync("qemu-img", ["bitmap", "-f", "qcow2", "--remove", vm.DiskPath("vda"), full.Manifest.Checkpoint!]);
        var reason = $"disk vda ('{vm.DiskPath("vda")}') has no bitmap '{full.Manifest.Checkpoint}'";

        var inc = await backups.CliAsync("inc");
        var auto = await backups.CliAsync("auto");

        Assert.Equal(4, inc.ExitCode);
        Assert.Contains($"cannot make an incremental backup of '{vm.Name}': {reason}", inc.StandardError);
        Assert.Equal(0, auto.ExitCode);
        var stream = await ParsedStream.ReadAsync(auto.StandardOutput);
        Assert.Equal((BackupLevel.Full, (string?)null), (stream.Manifest.Level, stream.Manifest.ParentCheckpoint));
        Assert.NotEqual(full.Manifest.ChainId, stream.Manifest.ChainId);
        Assert.Contains($"as Full: new chain {stream.Manifest.ChainId}: {reason}", auto.StandardError);
        AssertShutOffWith(vm, stream.Manifest.Checkpoint!);
        Assert.Equal([Recording(stream.Manifest.Checkpoint!)], await BitmapsAsync(vm));
        var rebuilt = new byte[vm.DiskSizeBytes];
        stream.ApplyTo("vda", rebuilt);
        Assert.True(ParsedStream.Expected(await vm.FillLayoutAsync(), vm.DiskSizeBytes).AsSpan().SequenceEqual(rebuilt));
    }

    [Fact(Timeout = 180_000)]
    public async Task A_shut_off_domain_without_a_chain_gets_a_full_backup_through_qemu_nbd_without_a_pause_and_a_copy_leaves_its_chain_alone()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        await ShutOffAsync(vm);

        var full = await backups.BackupAsync("auto");
        var copy = await backups.BackupAsync("copy");

        Assert.Equal((BackupLevel.Full, 0L, FreezeState.Off), (full.Manifest.Level, full.Manifest.PauseWindowMs, full.Manifest.Freeze));
        Assert.Equal((BackupLevel.Copy, (string?)null, full.Manifest.ChainId), (copy.Manifest.Level, copy.Manifest.Checkpoint, copy.Manifest.ChainId));
        var expected = ParsedStream.Expected(await vm.FillLayoutAsync(), vm.DiskSizeBytes);
        foreach (var stream in new[] { full, copy })
        {
            var rebuilt = new byte[vm.DiskSizeBytes];
            stream.ApplyTo("vda", rebuilt);
            Assert.True(expected.AsSpan().SequenceEqual(rebuilt));
            Assert.Equal(await File.ReadAllBytesAsync(vm.NvramPath), stream.Nvram);
        }

        AssertShutOffWith(vm, full.Manifest.Checkpoint!);
        Assert.Equal([Recording(full.Manifest.Checkpoint!)], await BitmapsAsync(vm));
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static Task ShutOffAsync(LabVm vm) => LabHost.RunAsync("virsh", ["-q", "destroy", vm.Name]);

    /// <summary>A write into the image of the shut-off domain, as if the guest had made it before it stopped.</summary>
    private static Task WriteOfflineAsync(LabVm vm, string command) => LabHost.RunAsync("qemu-io", ["-f", "qcow2", "-c", command, vm.DiskPath("vda")]);

    private static ImageBitmap Recording(string name) => new(name, Enabled: true, InUse: false);

    private static async Task<IReadOnlyList<ImageBitmap>> BitmapsAsync(LabVm vm) =>
        (await QemuImg.InfoAsync(vm.DiskPath("vda"), forceShare: false, CancellationToken.None)).Bitmaps;

    private static IReadOnlyList<string> Checkpoints(LabVm vm) => BackupFixture.Observe(vm.Name).Checkpoints;

    private static void AssertShutOffWith(LabVm vm, params string[] checkpoints)
    {
        var (state, _, existing) = BackupFixture.Observe(vm.Name);
        Assert.Equal(DomainState.Shutoff, state);
        Assert.Equal(checkpoints, existing);
    }

    private Task<CliResult> RestoreAsync(ParsedStream stream) =>
        VirtBackupCli.RunAsync(["restore", "--as", "vbt-offline-r", "--target-root", Path.Combine(_work, "root")], new MemoryStream(stream.Bytes));

    private async Task<string> CompareWithRestoredAsync(LabVm vm) =>
        (await LabHost.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", Path.Combine(_work, "root", "var/lib/libvirt/images/vbt-offline-r-vda.qcow2"), vm.DiskPath("vda")])).Trim();
}
