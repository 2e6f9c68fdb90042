using System.Text;
using System.Threading.Channels;
using CliWrap;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// A remote command that keeps running on the master connection while we talk to it. It announces
/// itself with one line on its standard output once it is ready (after the remote login shell's start-up,
/// whatever that costs: that is paid before anything waits for it), then works on what arrives on its
/// standard input. End of input is its signal to finish: the remote scripts clean up when their input
/// ends, which is also what happens when this process, the ssh client or the connection dies, so nothing
/// outlives the channel. Used for the state read armed before the pause and for a remote qemu-nbd.
/// </summary>
internal sealed class RemoteProcess : IAsyncDisposable
{
    private const int MaxReadyLineBytes = 4096;
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly Channel<byte[]> _input = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly MemoryStream _output = new();
    private readonly StringBuilder _error = new();
    private readonly CancellationTokenSource _kill = new();
    private readonly SshSession _session;
    private readonly Task<CommandResult> _process;
    private int _disposed;

    private RemoteProcess(SshSession session, string command, string operation)
    {
        _session = session;
        Operation = operation;
        _process = session.StreamingCommand(command)
            .WithStandardInputPipe(PipeSource.Create(WriteInputAsync))
            .WithStandardOutputPipe(PipeTarget.Create(ReadOutputAsync))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(_error))
            .ExecuteAsync(_kill.Token)
            .Task;
    }

    /// <summary>What the process does, for messages.</summary>
    public string Operation { get; }

    /// <summary>The line the process announced itself with (without the line feed).</summary>
    public string ReadyLine => _ready.Task.Result;

    /// <summary>Starts <paramref name="command"/> and returns once it has printed its first line.</summary>
    /// <exception cref="RemoteException">It ended before that; the message carries its error output.</exception>
    public static async Task<RemoteProcess> StartAsync(SshSession session, string command, string operation, CancellationToken cancellationToken)
    {
        var remote = new RemoteProcess(session, command, operation);
        try
        {
            await Task.WhenAny(remote._ready.Task, remote._process).WaitAsync(cancellationToken);
            if (!remote._ready.Task.IsCompletedSuccessfully)
            {
                var result = await remote._process;
                throw RemoteException.CommandFailed(session.Display, operation, result.ExitCode == 0 ? 1 : result.ExitCode, remote.ErrorText());
            }

            return remote;
        }
        catch
        {
            await remote.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends <paramref name="bytes"/> to the process's standard input.</summary>
    public void Send(ReadOnlySpan<byte> bytes)
    {
        if (!_input.Writer.TryWrite(bytes.ToArray()))
        {
            throw new InvalidOperationException($"{Operation}: the input is closed already");
        }
    }

    /// <summary>
    /// Closes the standard input and waits for the process to end; returns what it printed after its first
    /// line. A non-zero exit code is a <see cref="RemoteException"/> with its error output.
    /// </summary>
    public async Task<byte[]> CompleteAsync(CancellationToken cancellationToken)
    {
        _input.Writer.TryComplete();
        var result = await _process.WaitAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(_session.Display, Operation, result.ExitCode, ErrorText());
        }

        return _output.ToArray();
    }

    /// <summary>Ends the process (end of input, then a kill if it does not end) without reporting errors.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _input.Writer.TryComplete();
        try
        {
            await _process.WaitAsync(StopTimeout);
        }
        catch (TimeoutException)
        {
            await _kill.CancelAsync();
        }
        catch (OperationCanceledException)
        {
            // Killed on purpose.
        }

        try
        {
            await _process;
        }
        catch (OperationCanceledException)
        {
            // Killed on purpose (above): the remote side cleans up when the channel closes.
        }

        _kill.Dispose();
    }

    /// <summary>Only after the process ended: CliWrap fills it while it runs.</summary>
    private string ErrorText() => _error.ToString();

    private async Task WriteInputAsync(System.IO.Stream destination, CancellationToken cancellationToken)
    {
        await foreach (var chunk in _input.Reader.ReadAllAsync(cancellationToken))
        {
            await destination.WriteAsync(chunk, cancellationToken);
            await destination.FlushAsync(cancellationToken);
        }
    }

    private async Task ReadOutputAsync(System.IO.Stream source, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var line = new MemoryStream();
        try
        {
            int count;
            while ((count = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var start = 0;
                if (!_ready.Task.IsCompleted)
                {
                    var newline = Array.IndexOf(buffer, (byte)'\n', 0, count);
                    line.Write(buffer, 0, newline < 0 ? count : newline);
                    if (line.Length > MaxReadyLineBytes)
                    {
                        throw new InvalidDataException($"{Operation}: the remote command printed {line.Length} bytes without a line feed");
                    }

                    if (newline < 0)
                    {
                        continue;
                    }

                    _ready.TrySetResult(Encoding.UTF8.GetString(line.ToArray()));
                    start = newline + 1;
                }

                _output.Write(buffer, start, count - start);
            }
        }
        finally
        {
            _ready.TrySetException(new EndOfStreamException($"{Operation}: the remote command ended its output before it was ready"));
        }
    }
}
