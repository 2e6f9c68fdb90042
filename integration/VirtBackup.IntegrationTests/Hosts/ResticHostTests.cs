namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// contrib/restic/virtbackup-restic-backup and -restore with the real virtbackup, a real restic 0.14 and a
/// local repository, on lab VMs: a chain stored as tagged snapshots comes back as a new domain equal to the
/// source; a virtbackup that fails or is killed leaves no snapshot; after restic failed, the next run is a full.
/// </summary>
[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public sealed class ResticHostTests : IDisposable
{
    private const int Timeout = 180_000;
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;
    private readonly ResticRepository _restic;

    public ResticHostTests()
    {
        _virtbackup = new HostVirtBackup(_work.Path);
        _restic = new ResticRepository(_work.Path, _virtbackup);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task A_full_and_two_incrementals_stored_by_the_wrapper_restore_with_the_restore_script_as_a_new_domain_equal_to_the_source()
    {
        await _restic.InitAsync();
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        await using var copy = new RestoredLabDomain($"{vm.Name}-r");

        var full = await _restic.BackupAsync(vm.Name);
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "8M", "1M", "zero");
        // The wrapper's default stream is uncompressed (restic compresses); a zstd stream in the chain restores as well.
        var (inc1, atInc1) = await SourceState.BackUpPausedAsync(
            vm, _work.Sub("source-inc1"), () => _restic.BackupAsync(vm.Name, ["--compression", "zstd"]));
        await vm.InjectWriteAsync("vda", "1M", "2M", "0x99");
        await vm.InjectWriteAsync("vdb", "30M", "512K", "0x55");
        var (inc2, atInc2) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source-inc2"), () => _restic.BackupAsync(vm.Name));

        foreach (var backup in new[] { full, inc1, inc2 })
        {
            Assert.True(backup.ExitCode == 0, backup.ToString());
        }

        var snapshots = await _restic.SnapshotsAsync();
        Assert.Equal(new[] { full, inc1, inc2 }.Select(b => b.StandardOutput.Trim()), snapshots.Select(s => s.Id[..8]));
        Assert.Equal(["full", "inc", "inc"], snapshots.Select(s => s.Level));
        Assert.All(snapshots, s => Assert.Equal(["virtbackup", $"domain={vm.Name}", s.Tags[2]], s.Tags));
        Assert.All(snapshots, s => Assert.Equal([$"/{vm.Name}.tar"], s.Paths));
        var streams = new List<StreamContent>();
        foreach (var snapshot in snapshots)
        {
            streams.Add(await Content(snapshot));
        }

        Assert.Equal([Compression.None, Compression.Zstd, Compression.None], streams.Select(s => s.Manifest.Compression.Algorithm));
        Assert.Equal([BackupLevel.Full, BackupLevel.Inc, BackupLevel.Inc], streams.Select(s => s.Manifest.Level));
        Assert.Equal(streams[1].Manifest.Checkpoint, streams[2].Manifest.ParentCheckpoint);
        var last = streams[2];
        // virtbackup kept its chain where the config file's state-dir says.
        Assert.True(File.Exists(Path.Combine(_virtbackup.StateDirectory, vm.Uuid, "chain.json")));

        var list = await _restic.RestoreAsync(vm.Name, "--list");
        var restore = await _restic.RestoreAsync(vm.Name, "--", "--as", copy.Name, "--define");
        var olderRoot = _work.Sub("older");
        var older = await _restic.RestoreAsync(vm.Name, "--snapshot", snapshots[1].Id[..8], "--", "--target-root", olderRoot);

        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(snapshots.Select(s => $"{s.Id} {s.Level}"), list.StandardOutput.TrimEnd('\n').Split('\n').Select(line => string.Join(' ', line.Split(' ').Take(2))));
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains($"restored '{vm.Name}' from 3 snapshot(s)", restore.StandardError);
        using var libvirt = LibvirtConnection.Open();
        using var restored = libvirt.LookupByName(copy.Name);
        Assert.NotEqual(vm.Uuid, restored.Uuid);
        var tpmDirectory = $"/var/lib/libvirt/swtpm/{restored.Uuid}/tpm2";
        await atInc2.AssertRestoredAsync(copy.DiskPath, copy.NvramPath, tpmDirectory);
        // The state files are the ones in the stream restic kept, and those are the source's at the backup instant.
        Assert.Equal(last.Nvram, await File.ReadAllBytesAsync(copy.NvramPath));
        SourceState.AssertSameFiles(last.TpmFiles, SourceState.ReadTree(tpmDirectory), "TPM state vs the stream");

        Assert.True(older.ExitCode == 0, older.ToString());
        Assert.Contains($"restored '{vm.Name}' from 2 snapshot(s)", older.StandardError);
        await atInc1.AssertRestoredAsync(
            target => $"{olderRoot}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{olderRoot}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{olderRoot}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_failed_or_killed_virtbackup_leaves_no_snapshot_and_after_restic_failed_the_next_run_is_a_full()
    {
        await _restic.InitAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        var first = await _restic.BackupAsync(vm.Name);
        Assert.True(first.ExitCode == 0, first.ToString());
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");

        var killed = await _restic.BackupAsync(vm.Name, executable: _virtbackup.Interrupting);
        var missing = await _restic.BackupAsync("vbt-no-such-domain");
        var resticFailed = await _restic.BackupAsync(vm.Name, password: "wrong password");

        // Killed halfway: restic stored what arrived (exit 0); the wrapper saw virtbackup's 8 and forgot it.
        Assert.True(killed.ExitCode == 8, killed.ToString());
        Assert.Equal("", killed.StandardOutput);
        Assert.Contains("virtbackup failed (exit 8): the stream is incomplete", killed.StandardError);
        Assert.Matches("forgot snapshot [0-9a-f]{8} of the incomplete stream", killed.StandardError);
        Assert.Equal("running", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", vm.Name])).Trim());
        Assert.True(missing.ExitCode == 3, missing.ToString());
        Assert.Contains("virtbackup failed (exit 3)", missing.StandardError);
        // A wrong password: restic stops before reading, virtbackup gets a broken pipe (7); restic is the cause.
        Assert.True(resticFailed.ExitCode == 20, resticFailed.ToString());
        Assert.Contains($"restic backup failed (exit 1): nothing stored; the next run of '{vm.Name}' will be a full", resticFailed.StandardError);
        Assert.Equal(["full"], (await _restic.SnapshotsAsync()).Select(s => s.Level));

        var (next, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _restic.BackupAsync(vm.Name));

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Contains("was not stored in this repository: taking a full", next.StandardError);
        var snapshots = await _restic.SnapshotsAsync();
        Assert.Equal(["full", "full"], snapshots.Select(s => s.Level));
        var (firstStream, nextStream) = (await Content(snapshots[0]), await Content(snapshots[1]));
        Assert.Equal(BackupLevel.Full, nextStream.Manifest.Level);
        Assert.NotEqual(firstStream.Manifest.ChainId, nextStream.Manifest.ChainId);
        Assert.Equal(Compression.None, nextStream.Manifest.Compression.Algorithm);

        var list = await _restic.RestoreAsync(vm.Name, "--list");
        var root = _work.Sub("root");
        var restore = await _restic.RestoreAsync(vm.Name, "--", "--target-root", root);

        Assert.Equal(snapshots[1].Id, Assert.Single(list.StandardOutput.TrimEnd('\n').Split('\n')).Split(' ')[0]);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await source.AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
    }

    private async Task<StreamContent> Content(ResticSnapshot snapshot) =>
        await StreamContent.ReadAsync(await _restic.DumpAsync(snapshot.Id, snapshot.Paths[0]));
}
