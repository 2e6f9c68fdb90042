using System.Text;
using CliWrap;
using VirtBackup.Core.Platform;

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
/// <para>
/// A writable server defers flushes (<c>cache.no-flush=on</c>, data still written with O_DIRECT): qcow2 flushes
/// twice for every L2 table it allocates, thousands of fdatasync calls on a big scattered disk, each stalling every
/// write behind qcow2's allocation lock. Nothing is durable until <see cref="CloseAsync"/>, which waits for
/// qemu-nbd to close the image cleanly (exit 0: its metadata caches written) and then fsyncs the file. A restore
/// only keeps an image it closed that way; an aborted one is thrown away.
/// </para>
/// </summary>
public sealed class QemuNbdServer : IServedImage
{
    private const string PidFileName = "qemu-nbd.pid";
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromMinutes(2);

    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _kill = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task<CommandResult> _process;
    private readonly int _processId;
    private readonly string _directory;
    private readonly string _imagePath;
    private readonly bool _deferredFlushes;
    private int _disposed;

    /// <summary>Starts qemu-nbd with <paramref name="arguments"/>, its socket and pid file in <paramref name="directory"/>.</summary>
    private QemuNbdServer(string directory, string imagePath, bool deferredFlushes, IReadOnlyList<string> arguments)
    {
        _directory = directory;
        _imagePath = imagePath;
        _deferredFlushes = deferredFlushes;
        SocketPath = Path.Combine(directory, "nbd.sock");
        var command = Cli.Wrap("qemu-nbd")
            .WithArguments(["-k", SocketPath, "--pid-file", Path.Combine(directory, PidFileName), .. arguments])
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(_stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(_kill.Token, _stop.Token);
        _processId = command.ProcessId;
        _process = command.Task;
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
        var server = new QemuNbdServer(directory, imagePath, !readOnly, Arguments(imagePath, format, readOnly, bitmap, deferFlushes: !readOnly));
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

    /// <summary>
    /// qemu-nbd's arguments but the socket and pid file: the same whether it runs here or on a remote host. With
    /// <paramref name="deferFlushes"/> (writable only), flushes are no-ops and the caller makes the file durable
    /// after qemu-nbd exits (<see cref="CloseAsync"/>).
    /// </summary>
    internal static IReadOnlyList<string> Arguments(string imagePath, string format, bool readOnly, string? bitmap, bool deferFlushes = false)
    {
        var args = new List<string> { "--persistent", "--shared=4" };
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

        if (deferFlushes && !readOnly)
        {
            // --cache=none --aio=threads as below, plus no-flush, which only --image-opts can say. A comma in an
            // option value is written twice.
            args.AddRange(["--image-opts", $"driver={format},file.driver=file,file.filename={imagePath.Replace(",", ",,", StringComparison.Ordinal)},file.aio=threads,cache.direct=on,cache.no-flush=on"]);
        }
        else
        {
            args.AddRange(["-f", format, "--cache=none", "--aio=threads", imagePath]);
        }

        return args;
    }

    /// <summary>
    /// Ends serving once the client is done and makes what it wrote durable: SIGINT, qemu-nbd closes the image and must
    /// exit 0 within <see cref="CloseTimeout"/>, then (writable) the file is fsynced. Throws <see cref="ToolException"/>
    /// when qemu-nbd exited otherwise or not at all: the image may then lack metadata and must not be kept.
    /// </summary>
    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        if (!_process.IsCompleted)
        {
            Posix.Interrupt(_processId);
        }

        CommandResult result;
        try
        {
            result = await _process.WaitAsync(CloseTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            await DisposeAsync();
            throw new ToolException($"qemu-nbd did not close '{_imagePath}' within {CloseTimeout.TotalSeconds:0} s of SIGINT; the image may be incomplete");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ToolException($"qemu-nbd serving '{_imagePath}' was stopped before it closed the image; it may be incomplete");
        }

        if (result.ExitCode != 0)
        {
            await DisposeAsync();
            throw new ToolException($"qemu-nbd exited with {result.ExitCode} while closing '{_imagePath}', so the image may be incomplete: {_stderr.ToString().Trim()}");
        }

        if (_deferredFlushes)
        {
            FlushToDisk(_imagePath);
        }

        await DisposeAsync();
    }

    /// <summary>fsync of the image qemu-nbd wrote with flushes deferred.</summary>
    private static void FlushToDisk(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            file.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ToolException($"cannot flush '{path}' to stable storage after qemu-nbd closed it: {e.Message}", e);
        }
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
