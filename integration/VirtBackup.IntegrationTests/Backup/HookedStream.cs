namespace VirtBackup.IntegrationTests.Backup;

/// <summary>A write-only memory stream that runs a callback once, before its first write lands.</summary>
internal sealed class HookedStream(Func<Task> beforeFirstWrite) : MemoryStream
{
    private Func<Task>? _hook = beforeFirstWrite;

    public override bool CanSeek => false;

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await RunHookAsync();
        base.Write(buffer.ToArray(), 0, buffer.Length);
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        RunHookAsync().GetAwaiter().GetResult();
        base.Write(buffer, offset, count);
    }

    private Task RunHookAsync() => Interlocked.Exchange(ref _hook, null) is { } hook ? hook() : Task.CompletedTask;
}
