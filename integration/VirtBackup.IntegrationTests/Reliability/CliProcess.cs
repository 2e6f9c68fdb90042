using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>What a <see cref="CliProcess"/> ended with.</summary>
public sealed record CliOutcome(int ExitCode, byte[] StandardOutput, string StandardError, TimeSpan Elapsed)
{
    /// <summary>Milliseconds between the log lines containing <paramref name="from"/> and <paramref name="to"/> (their HH:mm:ss.fff stamps).</summary>
    public long LoggedMilliseconds(string from, string to)
    {
        var lines = StandardError.Split('\n');
        var start = Stamp(lines.First(l => l.Contains(from, StringComparison.Ordinal)));
        var end = Stamp(lines.Last(l => l.Contains(to, StringComparison.Ordinal)));
        return (long)(end - start).TotalMilliseconds;
    }

    private static TimeSpan Stamp(string line) => TimeSpan.ParseExact(line[..12], @"hh\:mm\:ss\.fff", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// The real <c>virtbackup</c> running in the background, for fault tests: its stderr is watched line by line (to
/// see "reached PHASE"), its stdout collected until <see cref="CloseStandardOutput"/> closes the read end of the
/// pipe at once (the consumer goes away), and signals go to its pid. Stdout is read with poll(2) first, so no read
/// is ever in flight when the pipe is closed: a closed read end means EPIPE for the very next write.
/// </summary>
public sealed partial class CliProcess : IDisposable
{
    private const short PollIn = 1;
    private const short PollHup = 0x10;
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly MemoryStream _stdout = new();
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private readonly Stopwatch _elapsed = Stopwatch.StartNew();
    private readonly SafeHandle _stdoutHandle;
    private volatile bool _closeStdout;
    private volatile bool _readStdout;

    private CliProcess(Process process, bool readStdout)
    {
        _process = process;
        _readStdout = readStdout;
        var stream = process.StandardOutput.BaseStream;
        _stdoutHandle = stream switch
        {
            FileStream f => f.SafeFileHandle,
            System.IO.Pipes.PipeStream p => p.SafePipeHandle,
            _ => throw new InvalidOperationException($"unexpected stdout stream {stream.GetType()}"),
        };
        _stdoutPump = Task.Factory.StartNew(PumpStdout, TaskCreationOptions.LongRunning);
        _stderrPump = Task.Run(PumpStderrAsync);
    }

    public int Pid => _process.Id;

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <c>virtbackup ARGS</c>. With <paramref name="readStdout"/> false nobody reads its stdout (a stalled
    /// consumer: the pipe fills and its writes block).
    /// </summary>
    /// <param name="wrapper">A program and its arguments that exec virtbackup, given as the next argument, in a changed
    /// environment (e.g. another mount namespace); null runs virtbackup directly.</param>
    public static CliProcess Start(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null, bool readStdout = true,
        string? runAs = null, IReadOnlyList<string>? wrapper = null)
    {
        var start = new ProcessStartInfo(wrapper?[0] ?? (runAs is null ? VirtBackupCli.ExecutablePath : "setpriv"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (runAs is not null)
        {
            // setpriv ARGS... virtbackup: the same process (exec), so signals and the exit code are virtbackup's own.
            foreach (var a in runAs.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                start.ArgumentList.Add(a);
            }

            start.ArgumentList.Add(VirtBackupCli.ExecutablePath);
        }
        else if (wrapper is not null)
        {
            foreach (var a in wrapper.Skip(1))
            {
                start.ArgumentList.Add(a);
            }

            start.ArgumentList.Add(VirtBackupCli.ExecutablePath);
        }

        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("virtbackup did not start");
        process.StandardInput.Close();
        return new CliProcess(process, readStdout);
    }

    /// <summary>Waits until a stderr line contains <paramref name="text"/>; fails when the process exits first or time runs out.</summary>
    public async Task WaitForStderrAsync(string text, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!StandardError.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                await _stderrPump;
                if (StandardError.Contains(text, StringComparison.Ordinal))
                {
                    return;
                }

                throw new TimeoutException($"virtbackup exited ({_process.ExitCode}) before '{text}' appeared on stderr:\n{StandardError}");
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"'{text}' did not appear on stderr within {timeout.TotalSeconds} s:\n{StandardError}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Milliseconds from now until the process has ended (a zombie or gone), polled from /proc on a dedicated thread:
    /// what the process took, independent of how soon the test harness notices.
    /// </summary>
    public Task<long> EndedAfterAsync() => Task.Factory.StartNew(() =>
    {
        var watch = Stopwatch.StartNew();
        var stat = $"/proc/{_process.Id}/stat";
        while (true)
        {
            try
            {
                var text = File.ReadAllText(stat);
                if (text[(text.LastIndexOf(')') + 2)..].StartsWith('Z'))
                {
                    return watch.ElapsedMilliseconds;
                }
            }
            catch (IOException)
            {
                return watch.ElapsedMilliseconds; // reaped already
            }

            Thread.Sleep(1);
        }
    }, TaskCreationOptions.LongRunning);

    /// <summary>Sends <paramref name="signal"/> (e.g. 15 for SIGTERM) to the process.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Lets a process waiting at a phase go on (SIGCONT).</summary>
    public void Continue() => Signal(Signals.Cont);

    /// <summary>The consumer goes away: the read end of stdout is closed now.</summary>
    public async Task CloseStandardOutputAsync()
    {
        _closeStdout = true;
        await _stdoutPump;
    }

    /// <summary>Starts reading stdout (after a stall).</summary>
    public void ResumeReading() => _readStdout = true;

    /// <summary>Waits for the exit; a process still running after <paramref name="timeout"/> is killed and reported as a hang.</summary>
    public async Task<CliOutcome> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            throw new TimeoutException($"virtbackup did not exit within {timeout.TotalSeconds} s (hang):\n{StandardError}");
        }

        _closeStdout = true;
        await Task.WhenAll(_stdoutPump, _stderrPump);
        return new CliOutcome(_process.ExitCode, _stdout.ToArray(), StandardError, _elapsed.Elapsed);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }

        _closeStdout = true;
        _stdoutPump.Wait(5000);
        _process.Dispose();
    }

    private void PumpStdout()
    {
        var buffer = new byte[256 * 1024];
        try
        {
            var fd = (int)_stdoutHandle.DangerousGetHandle();
            while (!_closeStdout)
            {
                if (!_readStdout)
                {
                    Thread.Sleep(20);
                    continue;
                }

                var poll = new PollFd { Fd = fd, Events = PollIn };
                if (Poll(ref poll, 1, 20) <= 0 || (poll.Revents & (PollIn | PollHup)) == 0)
                {
                    continue;
                }

                var n = (int)Read(fd, buffer, buffer.Length);
                if (n <= 0)
                {
                    return; // EOF: the writer is gone
                }

                _stdout.Write(buffer, 0, n);
            }
        }
        finally
        {
            _stdoutHandle.Dispose();
        }
    }

    private async Task PumpStderrAsync()
    {
        while (await _process.StandardError.ReadLineAsync() is { } line)
        {
            lock (_stderr)
            {
                _stderr.AppendLine(line);
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "poll")]
    private static partial int Poll(ref PollFd fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read")]
    private static partial nint Read(int fd, byte[] buffer, nint count);
}

/// <summary>Linux signal numbers.</summary>
public static class Signals
{
    public const int Hup = 1, Int = 2, Kill = 9, Pipe = 13, Term = 15, Cont = 18;
}
