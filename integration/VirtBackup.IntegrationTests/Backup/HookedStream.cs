namespace VirtBackup.IntegrationTests.Backup;

/// <summary>A write-only memory stream that runs a callback once, before its first write lands.</summary>
internal sealed class HookedStream(Func<Task> beforeFirstWrite) : MemoryStream
{
    private Func<Task>? _hook = beforeFirstWrite;

    public override bool CanSeek => false;

    public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        await WriteAsync(buffer.AsMemory(offset, count), cancellationToken);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _hook, null) is { } hook)
        {
            await hook();
        }

        await base.WriteAsync(buffer, cancellationToken);
    }

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
}
