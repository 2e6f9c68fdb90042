using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace VirtBackup.Tests.Recovery;

/// <summary><c>virtbackup serve</c> as a real process: started, its ready line awaited, stopped with a signal.</summary>
internal sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(Process process)
    {
        _process = process;
    }

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

    public int Pid => _process.Id;

    public IReadOnlyList<string> Uris { get; private set; } = [];

    public string Uri(string target) => Uris.Single(u => u.Contains($"/{target}", StringComparison.Ordinal));

    public static async Task<ServeProcess> StartAsync(params string[] args)
    {
        var info = new ProcessStartInfo(VirtBackupCli.ExecutablePath) { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add("serve");
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var serve = new ServeProcess(Process.Start(info)!);
        serve._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                serve._ready.TrySetException(new InvalidOperationException($"serve ended before it was ready: {serve.StandardError}"));
                return;
            }

            lock (serve._stderr)
            {
                serve._stderr.AppendLine(e.Data);
            }

            if (e.Data.Contains("ready: ", StringComparison.Ordinal))
            {
                serve._ready.TrySetResult(e.Data);
            }
        };
        serve._process.BeginErrorReadLine();
        var line = await serve._ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        serve.Uris = UriPattern().Matches(line).Select(m => m.Value).ToList();
        return serve;
    }

    /// <summary>Sends <paramref name="signal"/> (15: SIGTERM, 2: SIGINT) and waits for the exit code.</summary>
    public async Task<int> StopAsync(int signal = 15)
    {
        Assert.Equal(0, Kill(_process.Id, signal));
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            lock (_stderr)
            {
                throw new TimeoutException($"serve did not exit within 60 s of signal {signal}; its stderr so far:\n{_stderr}");
            }
        }

        _process.WaitForExit(); // drains stderr
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"nbd(\+unix)?://\S+")]
    private static partial Regex UriPattern();
}
