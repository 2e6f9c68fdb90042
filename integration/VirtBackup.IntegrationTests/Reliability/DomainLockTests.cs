using System.Diagnostics;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>One virtbackup per domain at a time; different domains never wait for each other.</summary>
[Collection(LabCollection.Name)]
public sealed class DomainLockTests
{
    [Fact(Timeout = 180_000)]
    public async Task A_second_backup_of_the_same_domain_is_refused_at_once_with_exit_4_and_the_first_completes()
    {
        await using var lab = await FaultLab.CreateAsync();
        using var first = await lab.StartAtAsync(BackupPhase.Streaming);
        var before = lab.Describe();
        var elapsed = Stopwatch.StartNew();

        var second = await VirtBackupCli.RunAsync(lab.BackupArguments());
        var repair = await VirtBackupCli.RunAsync(["repair", "--domain", lab.Vm.Name, "--state-dir", lab.StateDirectory]);

        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(10), $"the refusal took {elapsed.Elapsed}");
        Assert.Equal((4, 4), (second.ExitCode, repair.ExitCode));
        Assert.Contains($"another virtbackup is working on '{lab.Vm.Name}' (lock '{Path.Combine(lab.DomainStateDirectory, "lock")}' is held); wait for it to finish, the VM was not touched",
            second.StandardError);
        Assert.Empty(second.StandardOutput);
        Assert.Equal(before, lab.Describe()); // the refused runs touched nothing (the first run's job is still there)
        await lab.CompletesAndRestoresByteEqualAsync(first);
    }

    [Fact(Timeout = 240_000)]
    public async Task Backups_of_four_different_domains_at_the_same_time_all_succeed()
    {
        var labs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => FaultLab.CreateAsync()));
        try
        {
            // All four are held inside their pause window at once, then let go together.
            var running = await Task.WhenAll(labs.Select(l => l.StartAtAsync(BackupPhase.StateRead)));
            Assert.All(labs, l => Assert.Equal("paused, job, 1 uncommitted checkpoint, paused marker", l.Describe()));
            foreach (var backup in running)
            {
                backup.Continue();
            }

            var outcomes = await Task.WhenAll(running.Select(r => r.WaitForExitAsync(TimeSpan.FromSeconds(120))));
            for (var i = 0; i < labs.Length; i++)
            {
                Assert.True(outcomes[i].ExitCode == 0, $"{labs[i].Vm.Name}: exit {outcomes[i].ExitCode}: {outcomes[i].StandardError}");
                var stream = await ParsedStream.ReadAsync(outcomes[i].StandardOutput);
                Assert.Equal(labs[i].Vm.Uuid, stream.Manifest.DomainUuid);
                await labs[i].RestoresByteEqualAsync(outcomes[i].StandardOutput);
                labs[i].AssertClean();
                running[i].Dispose();
            }
        }
        finally
        {
            foreach (var lab in labs)
            {
                await lab.DisposeAsync();
            }
        }
    }
}
