using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>
/// An NBD server (qemu-nbd, nbdkit) running in the foreground as a child process; ready once its socket
/// accepts connections, killed on dispose.
/// </summary>
internal sealed class PeerProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private PeerProcess(Process process, NbdUri uri)
    {
        _process = process;
        Uri = uri;
    }

    public NbdUri Uri { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="tool"/> and waits until it listens on <paramref name="uri"/>.</summary>
    public static async Task<PeerProcess> StartAsync(string tool, NbdUri uri, params string[] arguments)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = await Spawner.StartAsync(info);
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(Tool.MissingMessage(tool), e);
        }

        var peer = new PeerProcess(process, uri);
        process.ErrorDataReceived += (_, e) => peer.Append(e.Data);
        process.OutputDataReceived += (_, e) => peer.Append(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            await peer.WaitUntilListeningAsync(tool, arguments);
            return peer;
        }
        catch
        {
            await peer.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts processes from one thread that lives as long as the test run. nbdkit sets PR_SET_PDEATHSIG(SIGTERM)
    /// on itself, and Linux fires that when the forking *thread* exits: started from a pool thread, nbdkit would
    /// die at a random moment when the pool retires that thread.
    /// </summary>
    private static class Spawner
    {
        private static readonly System.Collections.Concurrent.BlockingCollection<Action> Work = StartThread();

        public static Task<Process> StartAsync(ProcessStartInfo info)
        {
            var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
            Work.Add(() =>
            {
                try
                {
                    started.SetResult(Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start"));
                }
                catch (Exception e)
                {
                    started.SetException(e);
                }
            });
            return started.Task;
        }

        private static System.Collections.Concurrent.BlockingCollection<Action> StartThread()
        {
            var work = new System.Collections.Concurrent.BlockingCollection<Action>();
            var thread = new Thread(() =>
            {
                foreach (var action in work.GetConsumingEnumerable())
                {
                    action();
                }
            })
            {
                IsBackground = true,
                Name = "peer spawner",
            };
            thread.Start();
            return work;
        }
    }

    /// <summary>A free TCP port on 127.0.0.1 (the peer binds it right after).</summary>
    public static int FreeTcpPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private async Task WaitUntilListeningAsync(string tool, string[] arguments)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartTimeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException(
                    $"{tool} {string.Join(' ', arguments)} exited with code {_process.ExitCode} before listening: {Output}");
            }

            if (await CanConnectAsync())
            {
                return;
            }

            await Task.Delay(20);
        }

        throw new InvalidOperationException($"{tool} did not listen on {Uri} within {StartTimeout.TotalSeconds} s: {Output}");
    }

    private async Task<bool> CanConnectAsync()
    {
        if (Uri.Transport == NbdTransportKind.Unix && !File.Exists(Uri.SocketPath))
        {
            return false;
        }

        using var socket = Uri.Transport == NbdTransportKind.Unix
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        EndPoint endPoint = Uri.Transport == NbdTransportKind.Unix
            ? new UnixDomainSocketEndPoint(Uri.SocketPath!)
            : new IPEndPoint(IPAddress.Parse(Uri.Host!), Uri.Port);
        try
        {
            await socket.ConnectAsync(endPoint);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            _process.Dispose();
        }
    }
}
