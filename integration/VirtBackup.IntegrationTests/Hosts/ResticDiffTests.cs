namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// contrib/restic with <c>--level diff</c>: full, inc, diff, inc stored by the wrapper (tagged level=diff), and the
/// restore script rebuilds the chain as full → the newest diff → the incs after it, equal to the source.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class ResticDiffTests : IDisposable
{
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;
    private readonly ResticRepository _restic;

    public ResticDiffTests()
    {
        _virtbackup = new HostVirtBackup(_work.Path);
        _restic = new ResticRepository(_work.Path, _virtbackup);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = 240_000)]
    public async Task A_full_inc_diff_inc_series_restores_as_full_diff_inc_equal_to_the_source()
    {
        await _restic.InitAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        var full = await _restic.BackupAsync(vm.Name);
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var inc = await _restic.BackupAsync(vm.Name);
        await vm.InjectWriteAsync("vda", "32M", "1M", "0x55");
        var diff = await _restic.BackupAsync(vm.Name, ["--level", "diff"]);
        await vm.InjectWriteAsync("vda", "1M", "2M", "0x99");
        var (last, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _restic.BackupAsync(vm.Name));
        var root = _work.Sub("root");

        var snapshots = await _restic.SnapshotsAsync();
        var list = await _restic.RestoreAsync(vm.Name, "--list");
        var restore = await _restic.RestoreAsync(vm.Name, "--", "--target-root", root);

        Assert.Equal([0, 0, 0, 0], new[] { full, inc, diff, last }.Select(b => b.ExitCode));
        Assert.Equal(["full", "inc", "diff", "inc"], snapshots.Select(s => s.Level));
        Assert.Equal(
            [$"{snapshots[0].Id} full", $"{snapshots[2].Id} diff", $"{snapshots[3].Id} inc"],
            list.StandardOutput.TrimEnd('\n').Split('\n').Select(line => string.Join(' ', line.Split(' ').Take(2))));
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains($"restored '{vm.Name}' from 3 snapshot(s)", restore.StandardError);
        await source.AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
    }
}
