namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>contrib/restic/virtbackup-restic-backup and -restore against a real restic and a local repository.</summary>
public sealed class ResticGlueTests : IDisposable
{
    private const int Timeout = 60_000;
    private readonly TempDirectory _work = new();
    private readonly IStreamProducer _producer;
    private readonly ResticRepository _restic;

    public ResticGlueTests()
    {
        _producer = StreamProducers.Create(_work.Path);
        _restic = new ResticRepository(_work.Path, _producer);
    }

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = Timeout)]
    public async Task The_backup_wrapper_stores_one_tagged_snapshot_and_the_restore_script_gets_the_same_bytes_back()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm1");

        var backup = await _restic.BackupAsync("vm1");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        var emitted = _producer.LastStream("vm1");
        var snapshot = Assert.Single(await _restic.SnapshotsAsync());
        Assert.Equal(snapshot.Id[..8], backup.StandardOutput.Trim());
        Assert.Equal(["virtbackup", "domain=vm1", "level=full"], snapshot.Tags);
        Assert.Equal(["/vm1.tar"], snapshot.Paths);
        Assert.Equal(emitted, await _restic.DumpAsync(snapshot.Id, "/vm1.tar"));

        var target = _work.Sub("restored");
        var restore = await _restic.RestoreAsync("vm1", "--", "--target-root", target);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(["full"], _producer.AppliedLevels("vm1", target));
        Assert.Equal(emitted, _producer.ReceivedStream("vm1", target, 1));
        _producer.AssertRestored("vm1", target);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_producer_that_fails_halfway_leaves_no_snapshot_and_the_wrapper_exits_with_its_code()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm2");

        var backup = await _restic.BackupAsync("vm2", failing: true);

        Assert.True(backup.ExitCode == 3, backup.ToString());
        Assert.Equal("", backup.StandardOutput);
        Assert.Contains("virtbackup failed (exit 3)", backup.StandardError);
        Assert.Matches("forgot snapshot [0-9a-f]{8} of the incomplete stream", backup.StandardError);
        Assert.Empty(await _restic.SnapshotsAsync());

        var restore = await _restic.RestoreAsync("vm2", "--", "--target-root", _work.Sub("restored"));
        Assert.True(restore.ExitCode == 22, restore.ToString());
    }

    [Fact(Timeout = Timeout)]
    public async Task The_chain_restore_applies_the_newest_full_then_each_incremental_in_order()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm3");
        var emitted = new List<byte[]>();
        foreach (var round in new[] { 0, 1, 2, 3 })
        {
            if (round == 2)
            {
                // A second full starts a new chain: the restore must begin there, not at the first full.
                Assert.Equal(0, (await _restic.BackupAsync("vm3", "full")).ExitCode);
                emitted.Clear();
                emitted.Add(_producer.LastStream("vm3"));
                _producer.ChangeDomain("vm3", round);
                continue;
            }

            var backup = await _restic.BackupAsync("vm3");
            Assert.True(backup.ExitCode == 0, backup.ToString());
            emitted.Add(_producer.LastStream("vm3"));
            _producer.ChangeDomain("vm3", round);
        }

        var inc = await _restic.BackupAsync("vm3", "inc");
        Assert.True(inc.ExitCode == 0, inc.ToString());
        emitted.Add(_producer.LastStream("vm3"));
        var snapshots = await _restic.SnapshotsAsync();
        Assert.Equal(["full", "inc", "full", "inc", "inc"], snapshots.Select(s => s.Level));

        var list = await _restic.RestoreAsync("vm3", "--list");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(
            snapshots.Skip(2).Select(s => $"{s.Id} {s.Level}"),
            list.StandardOutput.TrimEnd('\n').Split('\n').Select(line => string.Join(' ', line.Split(' ').Take(2))));

        var target = _work.Sub("restored");
        var restore = await _restic.RestoreAsync("vm3", "--", "--target-root", target);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(["full", "inc", "inc"], _producer.AppliedLevels("vm3", target));
        for (var i = 0; i < emitted.Count; i++)
        {
            Assert.Equal(emitted[i], _producer.ReceivedStream("vm3", target, i + 1));
        }

        _producer.AssertRestored("vm3", target);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_chain_restore_as_of_an_older_snapshot_stops_there()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm4");
        Assert.Equal(0, (await _restic.BackupAsync("vm4")).ExitCode);
        _producer.ChangeDomain("vm4", 1);
        Assert.Equal(0, (await _restic.BackupAsync("vm4")).ExitCode);
        var asOf = _producer.LastStream("vm4");
        _producer.ChangeDomain("vm4", 2);
        Assert.Equal(0, (await _restic.BackupAsync("vm4")).ExitCode);
        var snapshots = await _restic.SnapshotsAsync();

        var target = _work.Sub("restored");
        var restore = await _restic.RestoreAsync("vm4", "--snapshot", snapshots[1].Id[..8], "--", "--target-root", target);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(["full", "inc"], _producer.AppliedLevels("vm4", target));
        Assert.Equal(asOf, _producer.ReceivedStream("vm4", target, 2));
    }

    [Fact(Timeout = Timeout)]
    public async Task After_a_failed_producer_the_next_run_is_a_full_that_starts_a_new_chain()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm5");
        Assert.Equal(0, (await _restic.BackupAsync("vm5")).ExitCode);
        _producer.ChangeDomain("vm5", 1);
        Assert.Equal(3, (await _restic.BackupAsync("vm5", failing: true)).ExitCode);

        var next = await _restic.BackupAsync("vm5", "inc");

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Contains("was not stored in this repository: taking a full", next.StandardError);
        Assert.Equal(["full", "full"], (await _restic.SnapshotsAsync()).Select(s => s.Level));
        var list = await _restic.RestoreAsync("vm5", "--list");
        Assert.Single(list.StandardOutput.TrimEnd('\n').Split('\n'));
    }

    [Fact(Timeout = Timeout)]
    public async Task When_restic_fails_after_the_producer_succeeded_the_wrapper_exits_20_and_the_next_run_is_a_full()
    {
        await _restic.InitAsync();
        _producer.CreateDomain("vm6");
        Assert.Equal(0, (await _restic.BackupAsync("vm6")).ExitCode);
        _producer.ChangeDomain("vm6", 1);
        // A restic that reads the whole stream and then fails, as on a full disk or a lost repository.
        var failingRestic = _work.Sub("failing-restic");
        File.WriteAllText(failingRestic, "#!/bin/sh\ncat > /dev/null\necho 'Fatal: simulated failure' >&2\nexit 1\n");
        File.SetUnixFileMode(failingRestic, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var failed = await _restic.BackupAsync("vm6", restic: failingRestic);

        Assert.True(failed.ExitCode == 20, failed.ToString());
        Assert.Contains("restic backup failed (exit 1): nothing stored; the next run of 'vm6' will be a full", failed.StandardError);
        Assert.Single(await _restic.SnapshotsAsync());

        var next = await _restic.BackupAsync("vm6");

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Equal(["full", "full"], (await _restic.SnapshotsAsync()).Select(s => s.Level));
    }
}
