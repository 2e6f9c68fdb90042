using System.Text;
using CliWrap;

namespace VirtBackup.Core.Disks;

/// <summary>
/// A <c>qemu-nbd</c> serving one image on a private unix socket, for as long as this object lives:
/// read-only for the backup of a shut-off domain (optionally exporting a persistent bitmap),
/// writable for the restore.
/// </summary>
public sealed class QemuNbdServer : IServedImage
{
    /// <summary>How long qemu-nbd gets to exit after SIGINT before it is killed: a SIGINT that arrives while it
    /// is still starting up (its socket exists, its main loop does not yet) is forgotten by qemu-nbd.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stop;
    private readonly CancellationTokenSource _kill;
    private readonly Task<CommandResult> _process;
    private readonly StringBuilder _stderr;
    private readonly string _directory;

    private QemuNbdServer(
        string directory, string socketPath, Task<CommandResult> process, StringBuilder stderr, CancellationTokenSource stop, CancellationTokenSource kill)
    {
        _stop = stop;
        _kill = kill;
        _directory = directory;
        SocketPath = socketPath;
        _process = process;
        _stderr = stderr;
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
        var socket = Path.Combine(directory, "nbd.sock");
        IReadOnlyList<string> args = ["-k", socket, .. Arguments(imagePath, format, readOnly, bitmap)];
        var stderr = new StringBuilder();
        var stop = new CancellationTokenSource();
        var kill = new CancellationTokenSource();
        var process = Cli.Wrap("qemu-nbd")
            .WithArguments(args)
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(kill.Token, stop.Token);
        var server = new QemuNbdServer(directory, socket, process.Task, stderr, stop, kill);
        await server.WaitForSocketAsync(imagePath, cancellationToken);
        return server;
    }

    /// <summary>qemu-nbd's arguments but the socket (<c>-k</c>): the same whether it runs here or on a remote host.</summary>
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
        await _stop.CancelAsync();
        try
        {
            await _process.WaitAsync(StopTimeout);
        }
        catch (TimeoutException)
        {
            // It missed the SIGINT (see StopTimeout). Whatever was written was flushed by the client before.
            await _kill.CancelAsync();
        }
        catch (OperationCanceledException)
        {
            // Expected: we stopped qemu-nbd ourselves (SIGINT).
        }

        try
        {
            await _process;
        }
        catch (OperationCanceledException)
        {
            // Expected: stopped or killed by us.
        }

        _stop.Dispose();
        _kill.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task WaitForSocketAsync(string imagePath, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(SocketPath))
        {
            if (_process.IsCompleted)
            {
                var exit = _process.IsCompletedSuccessfully ? _process.Result.ExitCode : -1;
                await DisposeAsync();
                throw new ToolException($"qemu-nbd could not serve '{imagePath}' (exit {exit}): {_stderr.ToString().Trim()}");
            }

            if (DateTime.UtcNow > deadline)
            {
                await DisposeAsync();
                throw new ToolException($"qemu-nbd did not open its socket for '{imagePath}' within 30 s");
            }

            await Task.Delay(10, cancellationToken);
        }
    }
}
