using System.Text;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// <c>--level diff</c> on a lab VM: the stream carries exactly the ranges written since the chain's full (whatever
/// incrementals came between), the checkpoints in between stay, the next incremental follows the diff, and full → diff →
/// incremental restores equal to the source. Running (libvirt merges the bitmaps) and shut off (the full's bitmap,
/// served by qemu-nbd, recorded every write since).
/// </summary>
[Collection(LabCollection.Name)]
public sealed class DiffBackupTests : IDisposable
{
    private const int M = 1024 * 1024;

    private readonly string _work = Directory.CreateTempSubdirectory("vbt-diff-").FullName;

    [Fact(Timeout = 300_000)]
    public async Task A_diff_of_a_running_domain_carries_exactly_the_changes_since_the_full_and_full_diff_inc_restores_equal_to_the_source()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var inc1 = await backups.BackupAsync("inc");
        await vm.InjectWriteAsync("vda", "32M", "1M", "0x55");
        var diff = await backups.BackupAsync("diff");
        await vm.InjectWriteAsync("vda", "1M", "2M", "0x99");
        var inc2 = await backups.BackupAsync("auto");
        await LabHost.RunAsync("virsh", ["-q", "destroy", vm.Name]);
        var chain = full.Manifest.ChainId!;

        Assert.Equal((BackupLevel.Diff, full.Manifest.Checkpoint, chain, ChainState.CheckpointName(chain, 3)),
            (diff.Manifest.Level, diff.Manifest.ParentCheckpoint, diff.Manifest.ChainId, diff.Manifest.Checkpoint));
        Assert.Equal([new DiskExtent(16 * M, M, false), new DiskExtent(32 * M, M, false)], diff.Maps["vda"].Extents);
        Assert.True(diff.Data["vda"].Values.Sum(d => d.Length) == 2 * M);
        Assert.True(DataOf(diff, 16 * M, M).All(b => b == 0x77) && DataOf(diff, 32 * M, M).All(b => b == 0x55));
        Assert.Equal((BackupLevel.Inc, diff.Manifest.Checkpoint), (inc2.Manifest.Level, inc2.Manifest.ParentCheckpoint));
        Assert.Equal([new DiskExtent(M, 2 * M, false)], inc2.Maps["vda"].Extents);
        Assert.Equal(
            [full.Manifest.Checkpoint!, inc1.Manifest.Checkpoint!, diff.Manifest.Checkpoint!, inc2.Manifest.Checkpoint!],
            BackupFixture.Observe(vm.Name).Checkpoints);

        Assert.Equal(0, (await RestoreAsync(full, "root")).ExitCode);
        Assert.Equal(0, (await RestoreAsync(diff, "root")).ExitCode);
        Assert.Equal(0, (await RestoreAsync(inc2, "root")).ExitCode);
        Assert.Equal("Images are identical.", await CompareWithRestoredAsync(vm, "root"));

        Assert.Equal(0, (await RestoreAsync(full, "other")).ExitCode);
        Assert.Equal(0, (await RestoreAsync(inc1, "other")).ExitCode);
        var refused = await RestoreAsync(diff, "other");
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains($"a differential applies only on its chain's full '{full.Manifest.Checkpoint}'", refused.StandardError);

        var listed = await VirtBackupCli.RunAsync(["list"], new MemoryStream(diff.Bytes));
        var verified = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(diff.Bytes));
        Assert.Equal((0, 0), (listed.ExitCode, verified.ExitCode));
        Assert.Equal("level        diff", Encoding.UTF8.GetString(listed.StandardOutput).Split('\n')[2]);
        Assert.Contains($"diff backup of {vm.Name}", verified.StandardError);
        Assert.Contains($"parent {full.Manifest.Checkpoint}", verified.StandardError);
    }

    [Fact(Timeout = 300_000)]
    public async Task A_diff_of_a_shut_off_domain_reads_the_fulls_bitmap_and_carries_every_change_since_the_full_and_the_next_running_incremental_follows_it()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var inc1 = await backups.BackupAsync("inc");
        await LabHost.RunAsync("virsh", ["-q", "destroy", vm.Name]);
        await LabHost.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x66 4M 1M", vm.DiskPath("vda")]);

        var diff = await backups.BackupAsync("diff");

        Assert.Equal((BackupLevel.Diff, full.Manifest.Checkpoint, ChainState.CheckpointName(full.Manifest.ChainId!, 3), FreezeState.Off),
            (diff.Manifest.Level, diff.Manifest.ParentCheckpoint, diff.Manifest.Checkpoint, diff.Manifest.Freeze));
        Assert.Equal([new DiskExtent(4 * M, M, false), new DiskExtent(16 * M, M, false)], diff.Maps["vda"].Extents);
        Assert.Contains(
            $"the domain was shut off: its disks were read through qemu-nbd, the changes since the chain's full {full.Manifest.Checkpoint} from the images' bitmaps; checkpoint {diff.Manifest.Checkpoint} was added to them",
            diff.Manifest.Warnings);
        var names = new[] { full.Manifest.Checkpoint!, inc1.Manifest.Checkpoint!, diff.Manifest.Checkpoint! };
        Assert.Equal(names, BackupFixture.Observe(vm.Name).Checkpoints);
        Assert.Equal(names.Select(n => new ImageBitmap(n, Enabled: true, InUse: false)),
            (await QemuImg.InfoAsync(vm.DiskPath("vda"), forceShare: false, CancellationToken.None)).Bitmaps.OrderBy(b => b.Name, StringComparer.Ordinal));
        Assert.Equal(0, (await RestoreAsync(full, "root")).ExitCode);
        Assert.Equal(0, (await RestoreAsync(diff, "root")).ExitCode);
        Assert.Equal("Images are identical.", await CompareWithRestoredAsync(vm, "root"));

        await LabHost.RunAsync("virsh", ["-q", "start", vm.Name]);
        await vm.InjectWriteAsync("vda", "20M", "1M", "0x31");
        var running = await backups.BackupAsync("auto");
        await LabHost.RunAsync("virsh", ["-q", "destroy", vm.Name]);

        Assert.Equal((BackupLevel.Inc, diff.Manifest.Checkpoint), (running.Manifest.Level, running.Manifest.ParentCheckpoint));
        Assert.Equal([new DiskExtent(20 * M, M, false)], running.Maps["vda"].Extents);
        Assert.Equal(0, (await RestoreAsync(running, "root")).ExitCode);
        Assert.Equal("Images are identical.", await CompareWithRestoredAsync(vm, "root"));
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>What the stream's data members carry for vda's range at <paramref name="offset"/> (zeros where none does).</summary>
    private static byte[] DataOf(ParsedStream stream, int offset, int length)
    {
        var range = new byte[length];
        foreach (var (start, data) in stream.Data["vda"])
        {
            var from = Math.Max(start, offset);
            var to = Math.Min(start + data.Length, offset + length);
            if (from < to)
            {
                data.AsSpan((int)(from - start), (int)(to - from)).CopyTo(range.AsSpan((int)(from - offset)));
            }
        }

        return range;
    }

    private Task<CliResult> RestoreAsync(ParsedStream stream, string root) =>
        VirtBackupCli.RunAsync(["restore", "--as", "vbt-diff-r", "--target-root", Path.Combine(_work, root)], new MemoryStream(stream.Bytes));

    private async Task<string> CompareWithRestoredAsync(LabVm vm, string root) =>
        (await LabHost.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2",
            Path.Combine(_work, root, "var/lib/libvirt/images/vbt-diff-r-vda.qcow2"), vm.DiskPath("vda")])).Trim();
}
