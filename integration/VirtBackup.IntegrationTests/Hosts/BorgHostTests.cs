namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// contrib/borg/virtbackup-borg-backup with the real virtbackup and a real borg 1.2 on a lab VM: borg runs
/// virtbackup itself (--content-from-command) and keeps no archive when it fails; the wrapper passes on
/// virtbackup's exit code, and after any failure the next run is a full. (Chains restored after pruning:
/// ChainRetentionVmTests, for borg with VIRTBACKUP_LONG_TESTS=1.)
/// </summary>
[Collection(LabCollection.Name)]
public sealed class BorgHostTests : IDisposable
{
    private const int Timeout = 300_000;
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;
    private readonly BorgRepository _borg;

    public BorgHostTests()
    {
        _virtbackup = new HostVirtBackup(_work.Path);
        _borg = new BorgRepository(_work.Path, _virtbackup);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task A_failed_or_killed_virtbackup_leaves_no_archive_and_after_borg_failed_the_next_run_is_a_full()
    {
        await _borg.InitAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "32M", fill: true);
        var first = await _borg.BackupAsync(vm.Name);
        Assert.True(first.ExitCode == 0, first.ToString());
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");

        var missing = await _borg.BackupAsync("vbt-no-such-domain");
        var killed = await _borg.BackupAsync(vm.Name, executable: _virtbackup.Interrupting);
        var borgFailed = await _borg.BackupAsync(vm.Name, passphrase: "wrong passphrase");
        var badName = await _borg.BackupAsync("vm@1");

        // borg 1.2.4 exits 2 and keeps no archive when the command fails; the wrapper reports virtbackup's own code.
        Assert.True(missing.ExitCode == 3, missing.ToString());
        Assert.Equal("", missing.StandardOutput);
        Assert.Contains("virtbackup failed (exit 3): the stream is incomplete", missing.StandardError);
        Assert.True(killed.ExitCode == 8, killed.ToString());
        Assert.Contains("virtbackup failed (exit 8): the stream is incomplete", killed.StandardError);
        Assert.DoesNotContain("deleted archive", killed.StandardError);
        Assert.Equal("running", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", vm.Name])).Trim());
        // A wrong passphrase: borg stops before it runs virtbackup; borg is the cause.
        Assert.True(borgFailed.ExitCode == 20, borgFailed.ToString());
        Assert.Contains($"nothing stored; the next run of '{vm.Name}' will be a full", borgFailed.StandardError);
        Assert.True(badName.ExitCode == 2, badName.ToString());
        Assert.Contains("is not usable in a borg archive name", badName.StandardError);
        Assert.Equal(["full"], (await _borg.ListAsync(vm.Name)).Select(a => a.Level));
        Assert.Empty(await _borg.ListAsync("vbt-no-such-domain"));

        var (next, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _borg.BackupAsync(vm.Name));

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Contains("was not stored in this repository: taking a full", next.StandardError);
        var archives = await _borg.ListAsync(vm.Name);
        Assert.Equal(["full", "full"], archives.Select(a => a.Level));
        Assert.Equal(archives[1].Id, next.StandardOutput.Trim());
        Assert.Matches($"^{vm.Name}@full@[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\\.[0-9]{{6}}$", archives[1].Id);
        var stream = await StreamContent.ReadAsync(await _borg.ExtractAsync(vm.Name, archives[1].Id));
        Assert.Equal(BackupLevel.Full, stream.Manifest.Level);
        Assert.Equal(Compression.None, stream.Manifest.Compression.Algorithm);

        var root = _work.Sub("root");
        var restore = await _borg.RestoreAsync(vm.Name, archives[1].Id, "--", "--target-root", root);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains($"restored '{vm.Name}' from 1 archive(s)", restore.StandardError);
        await source.AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
    }
}
