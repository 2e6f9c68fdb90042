using Microsoft.Win32.SafeHandles;

namespace VirtBackup.Core.Platform;

/// <summary>
/// An inherited file descriptor (stdin, stdout) as a Unix filter uses it: plain read(2) and write(2) at the offset it
/// shares with the shell and the commands before and after this one, so <c>( a; b ) &gt; file</c>, <c>&gt;&gt;</c>
/// and <c>{ a; b; } &lt; file</c> work on regular files as they do on pipes, terminals and sockets. (A
/// <see cref="FileStream"/> over the same descriptor reads and writes a regular file with pread/pwrite at a position
/// of its own and never moves the shared offset.) Unbuffered: a read consumes no byte more than it returns, so the
/// next reader of the descriptor starts where this one stopped. Seekable when the descriptor is (a regular file or a
/// block device). A write to a pipe or socket whose reader went away fails with EPIPE (.NET ignores SIGPIPE) as an
/// <see cref="IOException"/> with HResult 32. Async calls run the blocking call on the thread pool, as
/// <see cref="FileStream"/> does for a descriptor opened without O_NONBLOCK. The descriptor is never closed here.
/// </summary>
public sealed class FileDescriptorStream : System.IO.Stream
{
    private readonly int _fd;
    private readonly FileAccess _access;
    private readonly string _name;

    /// <param name="fd">An open descriptor this stream does not own (0 for stdin, 1 for stdout).</param>
    /// <param name="access">Read or Write: what the stream offers.</param>
    /// <param name="name">For error messages (e.g. "stdin").</param>
    public FileDescriptorStream(int fd, FileAccess access, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        _fd = fd;
        _access = access;
        _name = name;
        CanSeek = Posix.IsSeekable(fd); // a bad descriptor fails at its first read or write, with errno's text
        ClosedAtStart = fd <= 2 && Posix.IsOwnPipe(fd);
    }

    /// <summary>
    /// The shell started this process with the descriptor closed (<c>&lt;&amp;-</c>, <c>&gt;&amp;-</c>) and the runtime
    /// took the free slot for a pipe of its own (<see cref="Posix.IsOwnPipe"/>): reads and writes are refused with
    /// what to do, instead of waiting forever on that pipe or writing the stream into it.
    /// </summary>
    public bool ClosedAtStart { get; }

    public override bool CanRead => _access.HasFlag(FileAccess.Read);

    public override bool CanWrite => _access.HasFlag(FileAccess.Write);

    public override bool CanSeek { get; }

    public override long Length
    {
        get
        {
            EnsureSeekable();
            return RandomAccess.GetLength(new SafeFileHandle(_fd, ownsHandle: false));
        }
    }

    public override long Position
    {
        get => Seek(0, SeekOrigin.Current);
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(Span<byte> buffer)
    {
        EnsureCan(CanRead, "read");
        EnsureOpenedByTheShell("give the backup stream on stdin, e.g. 'virtbackup verify < FILE' or 'restic dump ... | virtbackup restore'");
        return buffer.IsEmpty ? 0 : Posix.Read(_fd, buffer, _name);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureCan(CanWrite, "write");
        EnsureOpenedByTheShell("redirect stdout to a file or pipe it to your backup host, e.g. 'virtbackup backup ... > FILE'");
        Posix.Write(_fd, buffer, _name);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<int>(Task.Run(() => Read(buffer.Span), cancellationToken));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask(Task.Run(() => Write(buffer.Span), cancellationToken));
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Nothing to flush: every write went to the descriptor.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>lseek(2): moves the offset shared with every other holder of the descriptor.</summary>
    public override long Seek(long offset, SeekOrigin origin)
    {
        EnsureSeekable();
        return Posix.Seek(_fd, offset, origin, _name) ?? throw new NotSupportedException($"{_name} cannot seek");
    }

    public override void SetLength(long value) => throw new NotSupportedException($"{_name} cannot change its length");

    private void EnsureOpenedByTheShell(string whatToDo)
    {
        if (ClosedAtStart)
        {
            throw new PreflightException($"{_name} was closed when virtbackup started (e.g. '<&-' or '>&-' in the shell): {whatToDo}");
        }
    }

    private void EnsureSeekable()
    {
        if (!CanSeek)
        {
            throw new NotSupportedException($"{_name} is not seekable (a pipe, socket or terminal)");
        }
    }

    private void EnsureCan(bool can, string what)
    {
        if (!can)
        {
            throw new NotSupportedException($"{_name} is not open to {what} here");
        }
    }
}
