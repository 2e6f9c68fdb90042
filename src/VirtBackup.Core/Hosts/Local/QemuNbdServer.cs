using System.Text;
using CliWrap;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>
/// A <c>qemu-nbd</c> serving one image on a private unix socket, for as long as this object lives:
/// read-only for the backup of a shut-off domain (optionally exporting a persistent bitmap),
/// writable for the restore.
/// <para>
/// Ready means the pid file exists: qemu-nbd writes it once it listens (the socket file appears at bind(),
/// before listen(), so a connect right then is refused). Stopping sends SIGINT and, if qemu-nbd is still there
/// after <see cref="StopGrace"/>, SIGKILL: qemu-nbd 7.2 loses a SIGINT that arrives before its main loop starts
/// (it sets its state to RUNNING after installing the handler), and would then run forever.
/// </para>
/// </summary>
public sealed class QemuNbdServer : IServedImage
{
    private const string PidFileName = "qemu-nbd.pid";
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _kill = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task<CommandResult> _process;
    private readonly string _directory;
    private int _disposed;

    /// <summary>Starts qemu-nbd with <paramref name="arguments"/>, its socket and pid file in <paramref name="directory"/>.</summary>
    private QemuNbdServer(string directory, IReadOnlyList<string> arguments)
    {
        _directory = directory;
        SocketPath = Path.Combine(directory, "nbd.sock");
        _process = Cli.Wrap("qemu-nbd")
            .WithArguments(["-k", SocketPath, "--pid-file", Path.Combine(directory, PidFileName), .. arguments])
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(_stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(_kill.Token, _stop.Token)
            .Task;
    }

    public string SocketPath { get; }

    /// <summary>The NBD URI of the export (its name is empty).</summary>
    public string Uri => $"nbd+unix:///?socket={SocketPath}";

    public static async Task<QemuNbdServer> StartAsync(
        string imagePath,
        string format,
        bool readOnly,
        string? bitmap,
        CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("virtbackup-nbd-").FullName;
        var server = new QemuNbdServer(directory, Arguments(imagePath, format, readOnly, bitmap));
        try
        {
            await server.WaitForSocketAsync(imagePath, cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>qemu-nbd's arguments but the socket and pid file: the same whether it runs here or on a remote host.</summary>
    internal static IReadOnlyList<string> Arguments(string imagePath, string format, bool readOnly, string? bitmap)
    {
        var args = new List<string> { "--persistent", "--shared=4", "-f", format, "--cache=none", "--aio=threads" };
        if (readOnly)
        {
            args.Add("--read-only");
        }
        else
        {
            args.Add("--discard=unmap");
            args.Add("--detect-zeroes=unmap");
        }

        if (bitmap is not null)
        {
            args.AddRange(["-B", bitmap]);
        }

        args.Add(imagePath);
        return args;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        if (!await ExitsWithinAsync(StopGrace))
        {
            await _kill.CancelAsync();
            await ExitsWithinAsync(Timeout.InfiniteTimeSpan);
        }

        _stop.Dispose();
        _kill.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<bool> ExitsWithinAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitAsync(timeout);
        }
        catch (OperationCanceledException)
        {
            // Expected: we stopped qemu-nbd ourselves (CliWrap reports its cancellation).
        }
        catch (TimeoutException)
        {
            return false;
        }

        return true;
    }

    /// <summary>qemu-nbd writes its pid file after it listens on the socket.</summary>
    private bool IsListening()
    {
        try
        {
            var pid = File.ReadAllText(Path.Combine(_directory, PidFileName));
            return pid.EndsWith('\n') && File.Exists(SocketPath);
        }
        catch (FileNotFoundException)
        {
            // Not written yet.
            return false;
        }
    }

    private async Task WaitForSocketAsync(string imagePath, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!IsListening())
        {
            if (_process.IsCompleted)
            {
                var exit = _process.IsCompletedSuccessfully ? _process.Result.ExitCode : -1;
                throw new ToolException($"qemu-nbd could not serve '{imagePath}' (exit {exit}): {_stderr.ToString().Trim()}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ToolException($"qemu-nbd did not open its socket for '{imagePath}' within 30 s");
            }

            await Task.Delay(10, cancellationToken);
        }
    }
}
