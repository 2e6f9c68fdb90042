namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// contrib/bacula with Bacula's Differential mapped to <c>--level diff</c>: a Full / Incremental / Differential /
/// Incremental schedule restored as Bacula's "most recent backup" selection picks it (the Full, the Differential, the
/// Incremental after it) gives a domain equal to the source at the last job.
/// </summary>
[Collection(BaculaLabCollection.Name)]
public sealed class BaculaDiffTests : IDisposable
{
    private const int Timeout = 240_000;

    private readonly BaculaLab _lab;
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;

    public BaculaDiffTests(BaculaLab lab)
    {
        _lab = lab;
        _virtbackup = new HostVirtBackup(_work.Path);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task A_full_incremental_differential_incremental_schedule_restored_as_bacula_selects_it_equals_the_source_at_the_last_job()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        await using var copy = new RestoredLabDomain($"{vm.Name}-r");
        await _lab.DefineContribExampleAsync(vm.Name, _virtbackup.ClientOptions());
        var job = $"virtbackup-{vm.Name}";

        var full = await _lab.RunBackupAsync(job, "Full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var incremental = await _lab.RunBackupAsync(job, "Incremental");
        await vm.InjectWriteAsync("vda", "32M", "1M", "0x55");
        var differential = await _lab.RunBackupAsync(job, "Differential");
        await vm.InjectWriteAsync("vda", "1M", "2M", "0x99");
        var (last, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _lab.RunBackupAsync(job, "Incremental"));

        Assert.Equal(
            [('T', 0, 'F'), ('T', 0, 'I'), ('T', 0, 'D'), ('T', 0, 'I')],
            new[] { full, incremental, differential, last }.Select(j => (j.JobStatus, j.JobErrors, j.Level)));
        Assert.Contains($"complete stream of '{vm.Name}' (level diff)", await _lab.JobLogAsync(differential.JobId));

        _lab.SetRestoreOptions(vm.Name, $"--as {copy.Name} --define");
        try
        {
            foreach (var restored in new[] { full, differential, last })
            {
                var restore = await _lab.RunRestoreAsync(restored.JobId, "/");
                Assert.Equal(('T', 0), (restore.JobStatus, restore.JobErrors));
            }
        }
        finally
        {
            _lab.SetRestoreOptions(vm.Name, null);
        }

        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(copy.Name);
        await source.AssertRestoredAsync(copy.DiskPath, copy.NvramPath, $"/var/lib/libvirt/swtpm/{domain.Uuid}/tpm2");
        var position = await File.ReadAllTextAsync(copy.ChainPositionPath);
        Assert.Contains("\"level\": \"inc\"", position);
        Assert.Contains("\"streams\": 3", position);
    }
}
