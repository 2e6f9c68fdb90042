namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// contrib/bacula (the Director-side plugin generator, the client-side reader, writer and check) with the real
/// virtbackup on lab VMs and a real Bacula 9.6 (director, storage and file daemon with bpipe, bconsole) on
/// loopback: Full and Incremental jobs restore through bconsole as a new domain equal to the source; a job
/// whose reader was killed is failed by the check, its stream is refused on restore, and the next job is a full.
/// </summary>
[Collection(BaculaLabCollection.Name)]
public sealed class BaculaHostTests : IDisposable
{
    private const int Timeout = 180_000;

    private readonly BaculaLab _lab;
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;

    public BaculaHostTests(BaculaLab lab)
    {
        _lab = lab;
        _virtbackup = new HostVirtBackup(_work.Path);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task A_full_and_an_incremental_job_restored_through_bconsole_give_a_new_domain_equal_to_the_source_at_the_last_backup()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", fill: true);
        await using var copy = new RestoredLabDomain($"{vm.Name}-r");
        await _lab.DefineContribExampleAsync(vm.Name, _virtbackup.ClientOptions());
        var job = $"virtbackup-{vm.Name}";

        var full = await _lab.RunBackupAsync(job, "Full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "8M", "1M", "zero");
        await vm.InjectWriteAsync("vdb", "40M", "3M", "0x55");
        var (incremental, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _lab.RunBackupAsync(job, "Incremental"));

        Assert.Equal(('T', 0, 'F'), (full.JobStatus, full.JobErrors, full.Level));
        Assert.Equal(('T', 0, 'I'), (incremental.JobStatus, incremental.JobErrors, incremental.Level));
        Assert.Contains($"ClientAfterJob: virtbackup-bacula-check: job {full.JobId}: complete stream of '{vm.Name}' (level full)", await _lab.JobLogAsync(full.JobId));
        Assert.Contains($"ClientAfterJob: virtbackup-bacula-check: job {incremental.JobId}: complete stream of '{vm.Name}' (level auto)", await _lab.JobLogAsync(incremental.JobId));

        // Restore-time options for the saved writer: as a new domain, defined in libvirt; where=/ (no target root).
        _lab.SetRestoreOptions(vm.Name, $"--as {copy.Name} --define");
        try
        {
            var restoreFull = await _lab.RunRestoreAsync(full.JobId, "/");
            var restoreIncremental = await _lab.RunRestoreAsync(incremental.JobId, "/");

            Assert.Equal(('T', 0), (restoreFull.JobStatus, restoreFull.JobErrors));
            Assert.Equal(('T', 0), (restoreIncremental.JobStatus, restoreIncremental.JobErrors));
        }
        finally
        {
            _lab.SetRestoreOptions(vm.Name, null);
        }

        using var libvirt = LibvirtConnection.Open();
        using var restored = libvirt.LookupByName(copy.Name);
        Assert.NotEqual(vm.Uuid, restored.Uuid);
        await source.AssertRestoredAsync(copy.DiskPath, copy.NvramPath, $"/var/lib/libvirt/swtpm/{restored.Uuid}/tpm2");
        var position = await File.ReadAllTextAsync(copy.ChainPositionPath);
        Assert.Contains("\"level\": \"inc\"", position);
        Assert.Contains("\"streams\": 2", position);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_job_whose_reader_was_killed_is_failed_by_the_check_its_stream_is_refused_and_the_next_incremental_is_a_full()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        var job = $"{vm.Name}-job";
        string[] raw = ["--compression", "none"];
        await _lab.DefineJobAsync(job, _lab.GeneratorPlugin(vm.Name, [.. _virtbackup.ClientOptions(), .. raw]), _lab.CheckScript);
        await _lab.DefineJobAsync($"{job}-killed", _lab.GeneratorPlugin(vm.Name, [.. _virtbackup.ClientOptions(_virtbackup.Interrupting), .. raw]), _lab.CheckScript);
        var first = await _lab.RunBackupAsync(job, "Full");
        Assert.Equal(('T', 0), (first.JobStatus, first.JobErrors));
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");

        // Another job of the same domain (Bacula makes its first run a Full) whose virtbackup is killed halfway.
        var killed = await _lab.RunBackupAsync($"{job}-killed", "Full");

        Assert.Equal('E', killed.JobStatus);
        var log = await _lab.JobLogAsync(killed.JobId);
        Assert.Contains($"virtbackup-bacula-check: FAILED: virtbackup exited 8 for '{vm.Name}' (full) in job {killed.JobId}", log);
        Assert.Contains("*** Backup Error ***", log);
        Assert.Equal("running", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", vm.Name])).Trim());
        var check = await Check(killed.JobId);
        Assert.True(check.ExitCode == 1, check.ToString());
        var checkFirst = await Check(first.JobId);
        Assert.True(checkFirst.ExitCode == 0, checkFirst.ToString());

        var refusedRoot = _work.Sub("refused");
        var refused = await _lab.RunRestoreAsync(killed.JobId, refusedRoot);

        var refusedLog = await _lab.JobLogAsync(refused.JobId);
        Assert.True(refused.JobStatus == 'E', refusedLog);
        Assert.Contains("ERR virtbackup restore failed: Invalid backup stream:", refusedLog);
        Assert.Contains("without a trailer: it is truncated", refusedLog);
        Assert.Contains($"Error closing for file /@virtbackup/{vm.Name}.tar: 268435462", refusedLog);
        AssertNoFiles(refusedRoot);

        var (next, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _lab.RunBackupAsync(job, "Incremental"));

        Assert.Equal(('T', 0, 'I'), (next.JobStatus, next.JobErrors, next.Level));
        Assert.Contains("was not confirmed stored: taking a full", await _lab.JobLogAsync(next.JobId));
        var root = _work.Sub("root");
        var restore = await _lab.RunRestoreAsync(next.JobId, root);
        Assert.Equal(('T', 0), (restore.JobStatus, restore.JobErrors));
        await source.AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
        Assert.Contains("\"level\": \"full\"", await File.ReadAllTextAsync($"{root}/var/lib/libvirt/images/.virtbackup/{vm.Name}.chain.json"));
    }

    [Fact(Timeout = Timeout)]
    public async Task Without_the_check_a_reader_that_failed_ends_ok_with_warnings_and_restoring_its_stream_is_refused()
    {
        const string domain = "vbt-no-such-domain";
        var vb = _virtbackup.Executable;
        var config = _virtbackup.ConfigPath;
        await _lab.DefineJobAsync(
            "vbt-plain-missing",
            $"bpipe:/@virtbackup/{domain}.tar:{vb} backup --config {config} --domain {domain} --level full:{vb} restore --config {config} --target-root %w");

        var failed = await _lab.RunBackupAsync("vbt-plain-missing", "Full");

        Assert.Equal(('T', 1), (failed.JobStatus, failed.JobErrors));
        Assert.Contains("Backup OK -- with warnings", await _lab.JobLogAsync(failed.JobId));

        var where = _work.Sub("where");
        var restore = await _lab.RunRestoreAsync(failed.JobId, where);

        Assert.Equal('E', restore.JobStatus);
        Assert.Contains($"Error closing for file /@virtbackup/{domain}.tar: 268435462", await _lab.JobLogAsync(restore.JobId));
        AssertNoFiles(where);
    }

    /// <summary>A refused restore leaves no file below its target root (at most the empty directories it made).</summary>
    private static void AssertNoFiles(string root) =>
        Assert.Empty(Directory.Exists(root) ? Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories) : []);

    private Task<ToolResult> Check(int jobId) => HostTools.RunAsync(
        HostTools.Contrib("bacula", "virtbackup-bacula-check"), ["--jobid", $"{jobId}", "--state-dir", _lab.ClientState]);
}
