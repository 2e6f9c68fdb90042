namespace VirtBackup.CliApp;

/// <summary>
/// stdin or stdout as the verbs see them: a read or write that blocks on a pipe (a consumer that stopped
/// reading, a producer that stopped writing) ends with <see cref="OperationCanceledException"/> as soon as the
/// call's token or <paramref name="interrupt"/> (the process's signal token) is cancelled. .NET cannot interrupt
/// the blocked system call itself, so it is abandoned on its thread pool thread: the verb then cleans up (resume,
/// abort the job, remove staging) and the process exits, which ends the call. After that the stream refuses use.
/// Seeking (lseek, which never blocks) passes through, so a reader of a regular file can give back what it read past
/// the end of its stream.
/// </summary>
internal sealed class InterruptibleStream(Stream inner, CancellationToken interrupt) : Stream
{
    private volatile bool _abandoned;

    public override bool CanRead => inner.CanRead;

    public override bool CanWrite => inner.CanWrite;

    public override bool CanSeek => inner.CanSeek;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfAbandoned(cancellationToken);
        var read = inner.ReadAsync(buffer, CancellationToken.None).AsTask();
        await WaitAsync(read, cancellationToken);
        return read.Result;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfAbandoned(cancellationToken);
        await WaitAsync(inner.WriteAsync(buffer, CancellationToken.None).AsTask(), cancellationToken);
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        ThrowIfAbandoned(cancellationToken);
        await WaitAsync(inner.FlushAsync(CancellationToken.None), cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin)
    {
        ThrowIfAbandoned(CancellationToken.None);
        return inner.Seek(offset, origin);
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    private async Task WaitAsync(Task operation, CancellationToken cancellationToken)
    {
        if (operation.IsCompleted)
        {
            await operation;
            return;
        }

        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interrupt);
        try
        {
            await operation.WaitAsync(either.Token);
        }
        catch (OperationCanceledException) when (!operation.IsCompleted)
        {
            _abandoned = true;
            throw;
        }
    }

    private void ThrowIfAbandoned(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_abandoned)
        {
            throw new OperationCanceledException("an interrupted read or write of this stream is still pending", interrupt);
        }
    }
}
