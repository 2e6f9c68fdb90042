namespace VirtBackup.Core.Stream;

/// <summary>
/// A small pool of equally sized buffers, so big member buffers are reused rather than re-allocated. A plain stack
/// under a lock: buffers are rented and returned on different threads, and a pool with per-thread lists would keep
/// them alive on those threads after its writer is gone.
/// </summary>
internal sealed class BufferPool(int bufferSize, int maxRetained)
{
    private readonly Stack<byte[]> _free = new(maxRetained);

    public int BufferSize => bufferSize;

    public byte[] Rent()
    {
        lock (_free)
        {
            if (_free.TryPop(out var buffer))
            {
                return buffer;
            }
        }

        return GC.AllocateUninitializedArray<byte>(bufferSize);
    }

    public void Return(byte[]? buffer)
    {
        if (buffer is not { Length: var n } || n != bufferSize)
        {
            return;
        }

        lock (_free)
        {
            if (_free.Count < maxRetained)
            {
                _free.Push(buffer);
            }
        }
    }
}
