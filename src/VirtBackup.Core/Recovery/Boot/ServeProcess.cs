using System.Diagnostics;
using System.Runtime.InteropServices;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// <c>virtbackup serve</c> as a background process of its own session (setsid), outliving the command that
/// started it: stdin from /dev/null, stdout and stderr appended to a log file. Ready when its log says
/// <c>ready:</c>; stopped by SIGTERM (SIGKILL after 10 s), and only when /proc says the pid is still that serve.
/// </summary>
public static partial class ServeProcess
{
    private const int SigTerm = 15, SigKill = 9;

    /// <param name="command">How to run virtbackup (the executable, and for <c>dotnet</c> the assembly).</param>
    public static int Start(IReadOnlyList<string> command, string socketPath, IReadOnlyList<string> streams, string logPath)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("log=$1; shift; exec setsid \"$@\" </dev/null >>\"$log\" 2>&1");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(logPath);
        foreach (var part in command)
        {
            start.ArgumentList.Add(part);
        }

        start.ArgumentList.Add("serve");
        start.ArgumentList.Add("--socket");
        start.ArgumentList.Add(socketPath);
        foreach (var stream in streams)
        {
            start.ArgumentList.Add(Path.GetFullPath(stream));
        }

        using var process = Process.Start(start) ?? throw new BootFailedException("could not start virtbackup serve");
        return process.Id;
    }

    /// <summary>Waits until the server logs that it is listening; throws with its log's end when it exits or times out.</summary>
    public static async Task WaitReadyAsync(int pid, string logPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var log = File.Exists(logPath) ? await File.ReadAllTextAsync(logPath, cancellationToken) : "";
            if (log.Contains("ready: ", StringComparison.Ordinal))
            {
                return;
            }

            if (!IsRunning(pid))
            {
                throw new BootFailedException($"virtbackup serve exited before it was ready: {Tail(log)}");
            }

            if (deadline.Elapsed > timeout)
            {
                throw new BootFailedException($"virtbackup serve was not ready within {timeout.TotalSeconds:F0} s: {Tail(log)}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Whether <paramref name="pid"/> is a live (not zombie) virtbackup serve on <paramref name="socketPath"/>.</summary>
    public static bool IsServing(int pid, string socketPath)
    {
        if (!IsRunning(pid))
        {
            return false;
        }

        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return args.Contains("serve") && args.Contains(socketPath);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Stops the server when <paramref name="pid"/> still is it; returns once it is gone.</summary>
    public static async Task StopAsync(int pid, string socketPath)
    {
        if (pid <= 0 || !IsServing(pid, socketPath))
        {
            return;
        }

        _ = Kill(pid, SigTerm);
        var waited = Stopwatch.StartNew();
        while (IsRunning(pid))
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(10))
            {
                _ = Kill(pid, SigKill);
                waited.Restart();
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Alive and not a zombie (a child of ours that exited stays a zombie until reaped).</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            return state.Length > 0 && state[0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string Tail(string log)
    {
        var lines = log.TrimEnd().Split('\n');
        return lines.Length == 0 || log.Length == 0 ? "(no output)" : string.Join(" | ", lines.TakeLast(3));
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>A boot could not be made or did not come up.</summary>
public sealed class BootFailedException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Libvirt;
}

/// <summary>A boot was refused before anything was made (name in use, not root, ...).</summary>
public sealed class BootRefusedException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
