using System.Collections.Concurrent;

namespace VirtBackup.Core.Stream;

/// <summary>A small pool of equally sized buffers, so big member buffers are reused rather than re-allocated.</summary>
internal sealed class BufferPool(int bufferSize, int maxRetained)
{
    private readonly ConcurrentBag<byte[]> _free = [];

    public int BufferSize => bufferSize;

    public byte[] Rent() => _free.TryTake(out var b) ? b : GC.AllocateUninitializedArray<byte>(bufferSize);

    public void Return(byte[]? buffer)
    {
        if (buffer is { Length: var n } && n == bufferSize && _free.Count < maxRetained)
        {
            _free.Add(buffer);
        }
    }
}
