using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;


namespace VirtBackup.Bench;

/// <summary>
/// An NBD server (<c>virtbackup serve</c> or <c>qemu-nbd</c>) running in the background on a unix socket for
/// as long as a benchmark reads from it; its peak RSS is read from /proc before it is stopped (SIGTERM).
/// </summary>
internal sealed class NbdServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private NbdServerProcess(Process process, string socket)
    {
        _process = process;
        Socket = socket;
    }

    public string Socket { get; }

    /// <summary>The NBD URI of export <paramref name="export"/> on this server's socket.</summary>
    public string Uri(string export) => $"nbd+unix:///{export}?socket={Socket}";

    /// <summary>Starts the server and returns once its socket accepts a connection.</summary>
    public static async Task<NbdServerProcess> StartAsync(string socket, string program, params string[] arguments)
    {
        File.Delete(socket);
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new BenchException($"could not start {program}");
        var server = new NbdServerProcess(process, socket);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var clock = Stopwatch.StartNew();
        while (!await CanConnectAsync(socket))
        {
            if (process.HasExited || clock.Elapsed > ReadyTimeout)
            {
                await server.DisposeAsync();
                throw new BenchException($"{program} {string.Join(' ', arguments)} did not listen on {socket}:\n{server.StandardError}");
            }

            await Task.Delay(50);
        }

        return server;
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

    /// <summary>The server's peak resident set size so far (VmHWM), in MiB.</summary>
    public double PeakRssMiB()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
            ?? throw new BenchException($"no VmHWM for pid {_process.Id}");
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_stderr)
        {
            if (_stderr.Length < 64 * 1024)
            {
                _stderr.AppendLine(line);
            }
        }
    }

    private static async Task<bool> CanConnectAsync(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await CliWrap.Cli.Wrap("kill").WithArguments(["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])
                .WithValidation(CliWrap.CommandResultValidation.None).ExecuteAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }

        _process.Dispose();
        File.Delete(Socket);
    }
}
