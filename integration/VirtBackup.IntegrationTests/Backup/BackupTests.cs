namespace VirtBackup.IntegrationTests.Backup;

[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public class BackupTests(ITestOutputHelper output)
{
    private const int M = 1024 * 1024;
    private const int K = 1024;

    [Fact(Timeout = 120_000)]
    public async Task A_full_backup_carries_the_nvram_and_tpm_state_byte_for_byte_and_leaves_the_vm_running_without_a_job()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var nvramBefore = await File.ReadAllBytesAsync(vm.NvramPath);
        var tpmBefore = await ReadTreeAsync(vm.TpmStateDirectory);

        var stream = await backups.BackupAsync("full");

        var nvramAfter = await File.ReadAllBytesAsync(vm.NvramPath);
        var tpmAfter = await ReadTreeAsync(vm.TpmStateDirectory);
        Assert.True(stream.Nvram!.SequenceEqual(nvramBefore) || stream.Nvram!.SequenceEqual(nvramAfter), "NVRAM member differs from the file before and after the backup");
        Assert.Equal(540672, stream.Nvram!.Length);
        Assert.Equal(["tpm2-00.permall"], stream.TpmFiles.Keys.Where(k => !k.StartsWith('.')));
        Assert.True(Same(stream.TpmFiles, tpmBefore) || Same(stream.TpmFiles, tpmAfter), "TPM members differ from the state directory before and after the backup");
        Assert.Equal(BackupLevel.Full, stream.Manifest.Level);
        Assert.True(stream.Manifest.PauseWindowMs > 0, $"pause window {stream.Manifest.PauseWindowMs} ms");
        Assert.Equal((true, "2.0", (string?)null), (stream.Manifest.Tpm.Present, stream.Manifest.Tpm.Version, stream.Manifest.Tpm.EncryptionSecretUuid));
        AssertRunningWithoutJob(vm, [stream.Manifest.Checkpoint!]);
        output.WriteLine($"pause window {stream.Manifest.PauseWindowMs} ms");
    }

    [Fact(Timeout = 120_000)]
    public async Task A_disk_rebuilt_from_the_stream_has_a_write_made_before_the_backup_and_not_one_made_after_backupBegin()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        await vm.InjectWriteAsync("vda", "32M", "1M", "0x61");
        var output = new HookedStream(async () =>
        {
            // The job has begun and the VM runs again: these writes must not reach the stream.
            await vm.InjectWriteAsync("vda", "40M", "1M", "0x62");
            await vm.InjectWriteAsync("vda", "0", "64K", "0x63");
        });

        await backups.InProcessAsync(Core.Chain.RequestedLevel.Full, output);

        var stream = await ParsedStream.ReadAsync(output.ToArray());
        var expected = ParsedStream.Expected(await vm.FillLayoutAsync(), vm.DiskSizeBytes);
        expected.AsSpan(32 * M, M).Fill(0x61);
        var rebuilt = new byte[vm.DiskSizeBytes];
        stream.ApplyTo("vda", rebuilt);
        Assert.True(expected.AsSpan().SequenceEqual(rebuilt), $"rebuilt disk differs from the disk at backupBegin at byte {FirstDifference(expected, rebuilt)}");
        Assert.Equal(DomainState.Running, BackupFixture.Observe(vm.Name).State);
    }

    [Fact(Timeout = 120_000)]
    public async Task An_incremental_carries_exactly_the_ranges_written_since_the_full_backup()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "128M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "8M", "1M", "0x71");
        await vm.InjectWriteAsync("vda", "100M", "64K", "0x72");
        await vm.InjectWriteAsync("vda", "0", "64K", "zero");

        var inc = await backups.BackupAsync("auto");

        Assert.Equal((BackupLevel.Inc, full.Manifest.Checkpoint, full.Manifest.ChainId), (inc.Manifest.Level, inc.Manifest.ParentCheckpoint, inc.Manifest.ChainId));
        Assert.Equal(
            [new DiskExtent(0, 64 * K, true), new DiskExtent(8 * M, M, false), new DiskExtent(100 * M, 64 * K, false)],
            inc.Maps["vda"].Extents);
        Assert.Equal([8L * M, 100L * M], inc.Data["vda"].Keys);
        Assert.True(inc.Data["vda"][8 * M].All(b => b == 0x71) && inc.Data["vda"][8 * M].Length == M);
        Assert.True(inc.Data["vda"][100 * M].All(b => b == 0x72) && inc.Data["vda"][100 * M].Length == 64 * K);
        Assert.Equal([full.Manifest.Checkpoint!, inc.Manifest.Checkpoint!], BackupFixture.Observe(vm.Name).Checkpoints);
    }

    [Fact(Timeout = 120_000)]
    public async Task Two_full_backups_of_an_unchanged_vm_have_byte_identical_disk_members()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);

        var first = await backups.BackupAsync("full");
        var second = await backups.BackupAsync("full");

        var a = first.RawMembers("disks/");
        var b = second.RawMembers("disks/");
        Assert.Equal(a.Select(m => m.Name), b.Select(m => m.Name));
        Assert.Contains("disks/vdb/0000000000800000.zst", a.Select(m => m.Name));
        for (var i = 0; i < a.Count; i++)
        {
            Assert.True(a[i].Raw.AsSpan().SequenceEqual(b[i].Raw), $"member {a[i].Name} differs between two full backups");
        }

        Assert.NotEqual(first.Manifest.ChainId, second.Manifest.ChainId);
        Assert.Equal([second.Manifest.Checkpoint!], BackupFixture.Observe(vm.Name).Checkpoints);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_consumer_that_closes_stdout_early_fails_the_backup_rolls_back_its_checkpoint_and_the_next_backup_still_has_every_change()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "16M", "8M", "0x44");

        var shell = await Cli.Wrap("bash")
            .WithArguments(["-c", $"'{Testing.VirtBackupCli.ExecutablePath}' backup --domain {vm.Name} --state-dir '{backups.StateDirectory}' --compression none 2>/dev/null | head -c 4096 >/dev/null; echo ${{PIPESTATUS[0]}}"])
            .ExecuteBufferedAsync();

        Assert.Equal("7", shell.StandardOutput.Trim());
        AssertRunningWithoutJob(vm, [full.Manifest.Checkpoint!]);
        var next = await backups.BackupAsync("auto");
        Assert.Equal((BackupLevel.Inc, full.Manifest.Checkpoint), (next.Manifest.Level, next.Manifest.ParentCheckpoint));
        Assert.Equal([new DiskExtent(16 * M, 8 * M, false)], next.Maps["vda"].Extents);
    }

    private static void AssertRunningWithoutJob(LabVm vm, string[] checkpoints)
    {
        var (state, job, existing) = BackupFixture.Observe(vm.Name);
        Assert.Equal((DomainState.Running, false), (state, job));
        Assert.Equal(checkpoints, existing);
        // The scratch images (made before the pause, reused by the job) are gone with the job.
        Assert.Empty(Directory.EnumerateFiles(Core.Backup.BackupOptions.DefaultScratchDirectory, $"virtbackup-{vm.Uuid}-*.scratch"));
    }

    private static async Task<SortedDictionary<string, byte[]>> ReadTreeAsync(string directory)
    {
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            files[Path.GetRelativePath(directory, path)] = await File.ReadAllBytesAsync(path);
        }

        return files;
    }

    private static bool Same(SortedDictionary<string, byte[]> a, SortedDictionary<string, byte[]> b) =>
        a.Keys.SequenceEqual(b.Keys) && a.Keys.All(k => a[k].AsSpan().SequenceEqual(b[k]));

    private static int FirstDifference(byte[] a, byte[] b) => a.AsSpan().CommonPrefixLength(b);
}
