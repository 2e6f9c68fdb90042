using System.Net.Sockets;
using System.Threading.Channels;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// The transmission replies of one connection, written by one loop: each reply whole and in the order it was
/// posted, the replies that are ready written together in one <c>sendmsg</c> gathered from their headers and the
/// cache's buffers (no copy, no lock handed from reply to reply). Each reply is done exactly once, when it is written
/// or can no longer be: the buffers it borrows are given back, and its request's place in flight.
/// </summary>
internal sealed class NbdReplyWriter
{
    /// <summary>Segments per <c>sendmsg</c>: well under the kernel's 1024 iovecs.</summary>
    private const int MaxSegments = 256;

    /// <summary>Bytes gathered before writing: a few replies of the 256 KiB reads nbdcopy and QEMU send.</summary>
    private const int MaxBatchBytes = 2 * 1024 * 1024;

    private readonly Socket _socket;
    private readonly SemaphoreSlim _inFlight;
    private readonly Action<Exception> _failed;
    private readonly Channel<NbdReply> _queue = Channel.CreateUnbounded<NbdReply>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<ArraySegment<byte>> _batch = new(MaxSegments);
    private readonly List<NbdReply> _written = [];
    private readonly Task _loop;

    /// <summary>
    /// Starts the loop: each reply done releases <paramref name="inFlight"/> once; <paramref name="failed"/> is told
    /// when a write fails (the client went away).
    /// </summary>
    public NbdReplyWriter(Socket socket, SemaphoreSlim inFlight, Action<Exception> failed)
    {
        _socket = socket;
        _inFlight = inFlight;
        _failed = failed;
        _loop = Task.Run(WriteAllAsync);
    }

    /// <summary>Queues <paramref name="reply"/>; after <see cref="CompleteAsync"/> or a failed write it is disposed unwritten.</summary>
    public void Post(NbdReply reply)
    {
        if (!_queue.Writer.TryWrite(reply))
        {
            Done(reply);
        }
    }

    /// <summary>Writes what was posted (unless a write fails) and ends the loop.</summary>
    public Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        return _loop;
    }

    private async Task WriteAllAsync()
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                var bytes = 0;
                while (bytes < MaxBatchBytes && reader.TryRead(out var reply))
                {
                    _written.Add(reply);
                    foreach (var segment in reply.Segments)
                    {
                        if (_batch.Count == MaxSegments)
                        {
                            await FlushAsync().ConfigureAwait(false);
                        }

                        _batch.Add(segment);
                        bytes += segment.Count;
                    }
                }

                await FlushAsync().ConfigureAwait(false);
                DisposeWritten();
            }
        }
        catch (Exception e)
        {
            _queue.Writer.TryComplete();
            _failed(e);
        }
        finally
        {
            DisposeWritten();
            while (reader.TryRead(out var left))
            {
                Done(left);
            }
        }
    }

    private async Task FlushAsync()
    {
        if (_batch.Count == 0)
        {
            return;
        }

        var total = 0;
        foreach (var segment in _batch)
        {
            total += segment.Count;
        }

        var sent = _batch.Count == 1
            ? await _socket.SendAsync(_batch[0].AsMemory(), SocketFlags.None).ConfigureAwait(false)
            : await _socket.SendAsync(_batch, SocketFlags.None).ConfigureAwait(false);
        _batch.Clear();
        if (sent != total)
        {
            throw new IOException($"the socket took {sent} of {total} bytes");
        }
    }

    private void DisposeWritten()
    {
        foreach (var reply in _written)
        {
            Done(reply);
        }

        _written.Clear();
    }

    private void Done(NbdReply reply)
    {
        reply.Hold?.Dispose();
        _inFlight.Release();
    }
}

/// <summary>One transmission reply: segments to write in order (its headers and the data it borrows), and what it borrows.</summary>
internal sealed class NbdReply(IDisposable? hold)
{
    public IDisposable? Hold { get; } = hold;

    public List<ArraySegment<byte>> Segments { get; } = new(2);

    /// <summary>A reply of one message.</summary>
    public static NbdReply Of(byte[] message)
    {
        var reply = new NbdReply(null);
        reply.Add(message);
        return reply;
    }

    /// <summary>Appends <paramref name="segment"/>, joined to the last one when it follows it in the same array.</summary>
    public void Add(ArraySegment<byte> segment)
    {
        if (segment.Count == 0)
        {
            return;
        }

        if (Segments.Count > 0 && Segments[^1] is var last && last.Array == segment.Array && last.Offset + last.Count == segment.Offset)
        {
            Segments[^1] = new ArraySegment<byte>(last.Array!, last.Offset, last.Count + segment.Count);
            return;
        }

        Segments.Add(segment);
    }

    /// <summary>Appends bytes borrowed from an array (the cache's buffers are arrays).</summary>
    public void Add(ReadOnlyMemory<byte> data)
    {
        if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var segment))
        {
            throw new InvalidOperationException("reply data must be backed by an array");
        }

        Add(segment);
    }
}
