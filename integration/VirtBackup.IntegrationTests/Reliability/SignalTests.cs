using System.Diagnostics;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The other signals (SIGINT, SIGHUP end a backup like SIGTERM; a SIGPIPE sent by kill is ignored, as .NET ignores
/// it), and a SIGTERM while stdout is blocked on a consumer that stopped reading.
/// </summary>
[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public sealed class SignalTests
{
    [Fact(Timeout = 180_000)]
    public async Task SIGINT_and_SIGHUP_end_a_backup_like_SIGTERM_and_a_SIGPIPE_sent_by_kill_changes_nothing()
    {
        await using var lab = await FaultLab.CreateAsync();
        foreach (var (signal, phase) in new[] { (Signals.Int, BackupPhase.Paused), (Signals.Hup, BackupPhase.BackupBegin) })
        {
            using var backup = await lab.StartAtAsync(phase);
            backup.Signal(signal);
            var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.True(outcome.ExitCode == 8, $"signal {signal}: exit {outcome.ExitCode}: {outcome.StandardError}");
            Assert.Contains($"received {(signal == Signals.Int ? "SIGINT" : "SIGHUP")}; cleaning up before exit", outcome.StandardError);
            lab.AssertClean();
        }

        using var piped = await lab.StartAtAsync(BackupPhase.Streaming);
        piped.Signal(Signals.Pipe);
        await lab.CompletesAndRestoresByteEqualAsync(piped);
    }

    [Fact(Timeout = 180_000)]
    public async Task SIGTERM_ends_a_backup_whose_consumer_stopped_reading_and_the_cleanup_runs()
    {
        await using var lab = await FaultLab.CreateAsync();
        using var backup = await lab.StartAtAsync(BackupPhase.Streaming, readStdout: false);
        backup.Continue();
        await WaitUntilBlockedInPipeWriteAsync(backup.Pid);
        Assert.Equal("running, job, 1 uncommitted checkpoint", lab.Describe());

        var signalled = Stopwatch.StartNew();
        backup.Signal(Signals.Term);
        var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.True(outcome.ExitCode == 8, $"exit {outcome.ExitCode}: {outcome.StandardError}");
        Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(15), $"took {signalled.Elapsed} to end");
        lab.AssertClean();
        await lab.NextBackupRestoresByteEqualAsync();
    }

    /// <summary>Until a thread of <paramref name="pid"/> sleeps in the kernel's pipe_write: the pipe is full, nobody reads.</summary>
    private static async Task WaitUntilBlockedInPipeWriteAsync(int pid)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    if ((await File.ReadAllTextAsync(Path.Combine(task, "wchan"))).Trim().EndsWith("pipe_write", StringComparison.Ordinal))
                    {
                        return;
                    }
                }
                catch (IOException)
                {
                    // The thread ended meanwhile.
                }
            }

            await Task.Delay(50);
        }

        Assert.Fail($"virtbackup ({pid}) never blocked writing to its stdout pipe");
    }
}
