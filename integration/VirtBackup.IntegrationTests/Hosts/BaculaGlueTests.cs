namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>contrib/bacula (bpipe plugin generator, reader, writer, check) on the private Bacula lab.</summary>
[Collection(BaculaLabCollection.Name)]
public sealed class BaculaGlueTests(BaculaLab lab) : IDisposable
{
    private const int Timeout = 90_000;
    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task With_the_contrib_example_config_a_full_and_an_incremental_job_store_their_streams_and_restores_to_a_where_dir_give_the_exact_bytes_back()
    {
        var producer = StreamProducers.Create(_work.Path);
        producer.CreateDomain("bvm1");
        await lab.DefineContribExampleAsync("bvm1", producer);

        var full = await lab.RunBackupAsync("virtbackup-bvm1", "Full");
        var fullStream = producer.LastStream("bvm1");
        producer.ChangeDomain("bvm1", 1);
        var incremental = await lab.RunBackupAsync("virtbackup-bvm1", "Incremental");
        var incrementalStream = producer.LastStream("bvm1");

        Assert.Equal(('T', 0, 'F'), (full.JobStatus, full.JobErrors, full.Level));
        Assert.Equal(('T', 0, 'I'), (incremental.JobStatus, incremental.JobErrors, incremental.Level));
        Assert.Contains($"ClientAfterJob: virtbackup-bacula-check: job {incremental.JobId}: complete stream of 'bvm1' (level auto)", await lab.JobLogAsync(incremental.JobId));

        var where = _work.Sub("where");
        var restoreFull = await lab.RunRestoreAsync(full.JobId, where);
        var restoreIncremental = await lab.RunRestoreAsync(incremental.JobId, where);

        Assert.Equal(('T', 0), (restoreFull.JobStatus, restoreFull.JobErrors));
        Assert.Equal(('T', 0), (restoreIncremental.JobStatus, restoreIncremental.JobErrors));
        Assert.Equal(["full", "inc"], producer.AppliedLevels("bvm1", where));
        Assert.Equal(fullStream, producer.ReceivedStream("bvm1", where, 1));
        Assert.Equal(incrementalStream, producer.ReceivedStream("bvm1", where, 2));
        producer.AssertRestored("bvm1", where);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_job_whose_reader_failed_is_failed_by_the_contrib_check_and_the_next_incremental_is_a_full()
    {
        var producer = StreamProducers.Create(_work.Path);
        producer.CreateDomain("bvm2");
        await lab.DefineJobAsync("bvm2", lab.GeneratorPlugin("bvm2", producer), lab.CheckScript);
        await lab.DefineJobAsync("bvm2-failing", lab.GeneratorPlugin("bvm2", producer, failing: true), lab.CheckScript);
        var first = await lab.RunBackupAsync("bvm2", "Full");
        Assert.Equal('T', first.JobStatus);

        var failed = await lab.RunBackupAsync("bvm2-failing", "Incremental");

        Assert.Equal('E', failed.JobStatus);
        var log = await lab.JobLogAsync(failed.JobId);
        Assert.Contains($"virtbackup-bacula-check: FAILED: virtbackup exited 3 for 'bvm2' (full) in job {failed.JobId}", log);
        Assert.Contains("*** Backup Error ***", log);
        var check = await HostTools.RunAsync(
            HostTools.Contrib("bacula", "virtbackup-bacula-check"), ["--jobid", $"{failed.JobId}", "--state-dir", lab.ClientState]);
        Assert.True(check.ExitCode == 1, check.ToString());
        var checkFirst = await HostTools.RunAsync(
            HostTools.Contrib("bacula", "virtbackup-bacula-check"), ["--jobid", $"{first.JobId}", "--state-dir", lab.ClientState]);
        Assert.True(checkFirst.ExitCode == 0, checkFirst.ToString());

        var next = await lab.RunBackupAsync("bvm2", "Incremental");

        Assert.Equal(('T', 0, 'I'), (next.JobStatus, next.JobErrors, next.Level));
        Assert.Contains("was not confirmed stored: taking a full", await lab.JobLogAsync(next.JobId));
        var where = _work.Sub("where");
        Assert.Equal('T', (await lab.RunRestoreAsync(next.JobId, where)).JobStatus);
        Assert.Equal(["full"], producer.AppliedLevels("bvm2", where));
        producer.AssertRestored("bvm2", where);
    }

    [Fact(Timeout = Timeout)]
    public async Task Without_the_check_a_failed_reader_ends_ok_with_warnings_and_restoring_it_is_refused()
    {
        var producer = StreamProducers.Create(_work.Path);
        producer.CreateDomain("bvm3");
        var reader = string.Join(' ', [producer.Executable, .. producer.GlobalOptions(failing: true), "backup", "--domain", "bvm3", "--level", "full"]);
        var writer = string.Join(' ', [producer.Executable, .. producer.GlobalOptions(), "restore", "--target-root", "%w"]);
        await lab.DefineJobAsync("bvm3-plain", $"bpipe:/@virtbackup/bvm3.tar:{reader}:{writer}");

        var failed = await lab.RunBackupAsync("bvm3-plain", "Full");

        Assert.Equal('T', failed.JobStatus);
        Assert.Equal(1, failed.JobErrors);
        Assert.Contains("Backup OK -- with warnings", await lab.JobLogAsync(failed.JobId));

        var where = _work.Sub("where");
        var restore = await lab.RunRestoreAsync(failed.JobId, where);

        Assert.Equal('E', restore.JobStatus);
        // bpipe reports the writer's exit status as 0x10000000 | code: virtbackup's 6 is "invalid stream".
        Assert.Contains("Error closing for file /@virtbackup/bvm3.tar: 268435462", await lab.JobLogAsync(restore.JobId));
        Assert.Empty(producer.AppliedLevels("bvm3", where));
    }
}
