using VirtBackup.IntegrationTests.Lab;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// Bacula's own retention against a chain (docs/HOSTS.md, Bacula, Retention): the contrib job with its Fulls in a pool
/// whose Volume Retention is shorter than the chain. Once Bacula pruned the Full's volume, the next Incremental finds no
/// Full in the catalog and is upgraded to a Full, which reaches virtbackup as <c>--level full</c> and restores alone;
/// the Incremental left over from the pruned chain is refused at restore (virtbackup's exit 4, the restore job fails).
/// </summary>
[Collection(BaculaLabCollection.Name)]
public sealed class BaculaRetentionTests : IDisposable
{
    private const int Timeout = 240_000;

    private readonly BaculaLab _lab;
    private readonly TempDirectory _work = new();
    private readonly HostVirtBackup _virtbackup;

    public BaculaRetentionTests(BaculaLab lab)
    {
        _lab = lab;
        _virtbackup = new HostVirtBackup(_work.Path);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task When_bacula_pruned_the_full_the_next_incremental_is_upgraded_to_a_virtbackup_full_that_restores_alone_and_the_orphaned_incremental_is_refused()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "32M", fill: true);
        await _lab.DefineContribExampleAsync(vm.Name, _virtbackup.ClientOptions());
        var job = $"virtbackup-{vm.Name}-shortfull";
        await _lab.DefineResourcesAsync($"retention-{vm.Name}", $$"""
            # A retention that breaks chains: each Full alone on a volume kept 1 second.
            Pool {
              Name = "vbt-full-{{vm.Name}}"
              Pool Type = Backup
              Label Format = "vbtfull-{{vm.Name}}-"
              Maximum Volume Jobs = 1
              Volume Retention = 1 second
              AutoPrune = no
              Recycle = no
            }
            Job {
              Name = "{{job}}"
              JobDefs = "virtbackup-defs-{{vm.Name}}"
              FileSet = "virtbackup-{{vm.Name}}"
              Full Backup Pool = "vbt-full-{{vm.Name}}"
            }
            """);

        var full = await _lab.RunBackupAsync(job, "Full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x77");
        var orphan = await _lab.RunBackupAsync(job, "Incremental");
        var pruned = await _lab.PruneVolumesAsync(full.JobId);
        await vm.InjectWriteAsync("vda", "20M", "1M", "0x55");
        var (upgraded, source) = await SourceState.BackUpPausedAsync(vm, _work.Sub("source"), () => _lab.RunBackupAsync(job, "Incremental"));

        Assert.Equal([('T', 0, 'F'), ('T', 0, 'I'), ('T', 0, 'F')], new[] { full, orphan, upgraded }.Select(j => (j.JobStatus, j.JobErrors, j.Level)));
        Assert.Contains($"Found 1 Job(s) associated with the Volume \"vbtfull-{vm.Name}-", pruned);
        var log = await _lab.JobLogAsync(upgraded.JobId);
        Assert.Contains("No prior or suitable Full backup found in catalog. Doing FULL backup.", log);
        Assert.Contains($"job {upgraded.JobId}: complete stream of '{vm.Name}' (level full)", log);

        var root = _work.Sub("root");
        var restore = await _lab.RunRestoreAsync(upgraded.JobId, root);
        Assert.Equal(('T', 0), (restore.JobStatus, restore.JobErrors));
        await source.AssertRestoredBelowAsync(root, vm);

        var refusedRoot = _work.Sub("refused");
        var refused = await _lab.RunRestoreAsync(orphan.JobId, refusedRoot);
        var refusedLog = await _lab.JobLogAsync(refused.JobId);
        // virtbackup refuses before reading the stream: the file daemon's pipe write fails too (E error or f fatal).
        Assert.True(refused.JobStatus is 'E' or 'f', refusedLog);
        Assert.Contains("Restore the chain's full stream first", refusedLog);
        Assert.Contains($"Error closing for file /@virtbackup/{vm.Name}.tar: 268435460", refusedLog);
        Assert.False(File.Exists($"{refusedRoot}/var/lib/libvirt/images/{vm.Name}-vda.qcow2"), refusedLog);
    }
}
