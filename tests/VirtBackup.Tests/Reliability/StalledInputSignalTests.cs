using System.Diagnostics;
using System.Runtime.InteropServices;

namespace VirtBackup.Tests.Reliability;

/// <summary>
/// A producer that stops writing halfway (the backup host hangs) leaves restore and verify blocked in a read of
/// stdin; SIGTERM must still end them at once (exit 8), and a restore must remove everything it staged.
/// </summary>
public partial class StalledInputSignalTests
{
    [Theory(Timeout = 60_000)]
    [InlineData("restore")]
    [InlineData("verify")]
    [InlineData("list")]
    public async Task SIGTERM_ends_a_verb_blocked_on_a_producer_that_stopped_writing_and_a_restore_leaves_nothing(string verb)
    {
        var valid = await ChainFixtures.BuildAsync(ChainFixtures.Small());
        var records = Stream.TarSurgery.Records(valid);
        var half = valid[..(int)records.First(r => r.Name.StartsWith("disks/vda/0", StringComparison.Ordinal)).End]; // state staged, a disk begun
        using var tree = new RestoredTree();
        var start = new ProcessStartInfo(VirtBackupCli.ExecutablePath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in verb == "restore" ? ["restore", "--target-root", tree.Root, "--format", "raw"] : new[] { verb })
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        using var killOnFailure = new KillOnDispose(process);
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.BaseStream.CopyToAsync(System.IO.Stream.Null);
        await process.StandardInput.BaseStream.WriteAsync(half);
        await process.StandardInput.BaseStream.FlushAsync();
        if (verb == "restore")
        {
            await WaitUntilAsync(() => tree.StagingLeftovers().Count > 0, "the restore staged nothing");
        }

        await WaitUntilAsync(() => IsBlockedReading(process.Id), "the verb never blocked reading stdin");
        var signalled = Stopwatch.StartNew();
        Assert.Equal(0, Kill(process.Id, 15));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);

        Assert.True(process.ExitCode == 8, $"exit {process.ExitCode}: {await stderr}");
        Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(10), $"took {signalled.Elapsed}");
        Assert.Contains($"virtbackup {verb} was interrupted by a signal; its cleanup has run", await stderr);
        Assert.Empty(tree.StagingLeftovers());
        Assert.Empty(tree.Files());
        process.StandardInput.Close();
        await stdout;
    }

    /// <summary>
    /// Some thread of the process sits in read(0, …): /proc/PID/task/TID/syscall starts with the syscall number (0, read
    /// on x86-64) and its first argument (the fd). Blocked in pipe_read alone is not enough: the runtime has threads
    /// that read pipes of their own, before the verb (and its signal handling) even started.
    /// </summary>
    private static bool IsBlockedReading(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task").Any(t =>
        {
            try
            {
                var call = File.ReadAllText(Path.Combine(t, "syscall")).Split(' ');
                return call is ["0", "0x0", ..]
                    && File.ReadAllText(Path.Combine(t, "wchan")).Trim().EndsWith("pipe_read", StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false; // the thread ended meanwhile
            }
        });

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(20), failure);
            await Task.Delay(20);
        }
    }

    /// <summary>A hung process must not outlive its failed test.</summary>
    private sealed class KillOnDispose(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
