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

    private readonly Channel<byte[]> input = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource<string> ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly MemoryStream output = new();
    private readonly StringBuilder error = new();
    private readonly CancellationTokenSource kill = new();
    private readonly SshSession session;
    private readonly Task<CommandResult> process;
    private int disposed;

    private RemoteProcess(SshSession session, string command, string operation)
    {
        this.session = session;
        Operation = operation;
        process = session.StreamingCommand(command)
            .WithStandardInputPipe(PipeSource.Create(WriteInputAsync))
            .WithStandardOutputPipe(PipeTarget.Create(ReadOutputAsync))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(error))
            .ExecuteAsync(kill.Token)
            .Task;
    }

    /// <summary>What the process does, for messages.</summary>
    public string Operation { get; }

    /// <summary>The line the process announced itself with (without the line feed).</summary>
    public string ReadyLine => ready.Task.Result;

    /// <summary>Starts <paramref name="command"/> and returns once it has printed its first line.</summary>
    /// <exception cref="RemoteException">It ended before that; the message carries its error output.</exception>
    public static async Task<RemoteProcess> StartAsync(SshSession session, string command, string operation, CancellationToken cancellationToken)
    {
        var remote = new RemoteProcess(session, command, operation);
        try
        {
            await Task.WhenAny(remote.ready.Task, remote.process).WaitAsync(cancellationToken);
            if (!remote.ready.Task.IsCompletedSuccessfully)
            {
                var result = await remote.process;
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
        if (!input.Writer.TryWrite(bytes.ToArray()))
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
        input.Writer.TryComplete();
        var result = await process.WaitAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(session.Display, Operation, result.ExitCode, ErrorText());
        }

        return output.ToArray();
    }

    /// <summary>Ends the process (end of input, then a kill if it does not end) without reporting errors.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        input.Writer.TryComplete();
        try
        {
            await process.WaitAsync(StopTimeout);
        }
        catch (TimeoutException)
        {
            await kill.CancelAsync();
        }
        catch (OperationCanceledException)
        {
            // Killed on purpose.
        }

        try
        {
            await process;
        }
        catch (OperationCanceledException)
        {
            // Killed on purpose (above): the remote side cleans up when the channel closes.
        }

        kill.Dispose();
    }

    /// <summary>Only after the process ended: CliWrap fills it while it runs.</summary>
    private string ErrorText() => error.ToString();

    private async Task WriteInputAsync(System.IO.Stream destination, CancellationToken cancellationToken)
    {
        await foreach (var chunk in input.Reader.ReadAllAsync(cancellationToken))
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
                if (!ready.Task.IsCompleted)
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

                    ready.TrySetResult(Encoding.UTF8.GetString(line.ToArray()));
                    start = newline + 1;
                }

                output.Write(buffer, start, count - start);
            }
        }
        finally
        {
            ready.TrySetException(new EndOfStreamException($"{Operation}: the remote command ended its output before it was ready"));
        }
    }
}
