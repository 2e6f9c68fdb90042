namespace VirtBackup.Core.Nbd;

/// <summary>
/// One request in flight: what was asked (to validate the reply against), where READ data goes, what the
/// reply chunks have delivered so far, and the completion the caller awaits. Only the reply-reader loop
/// writes into <see cref="ReadBuffer"/>; a cancelled caller abandons the request, and its late data is discarded.
/// </summary>
internal sealed class NbdRequest(
    ulong handle, ushort command, ushort flags, long offset, uint length, Memory<byte> readBuffer, uint contextId)
    : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
{
    private readonly object _gate = new();
    private bool _receiving;
    private bool _abandoned;
    private bool _finished;
    private CancellationToken _cancelledBy;
    private long _contiguousEnd = offset;
    private List<(long Start, long End)>? _scattered;

    public ulong Handle { get; } = handle;
    public ushort Command { get; } = command;
    public ushort Flags { get; } = flags;
    public long Offset { get; } = offset;
    public uint Length { get; } = length;
    public long End => Offset + Length;
    public Memory<byte> ReadBuffer { get; } = readBuffer;

    /// <summary>BLOCK_STATUS: the context whose extents the caller wants.</summary>
    public uint WantedContextId { get; } = contextId;

    public List<NbdExtent>? Extents { get; set; }

    /// <summary>BLOCK_STATUS: the context ids a chunk has arrived for.</summary>
    public List<uint>? ContextsSeen { get; set; }

    /// <summary>READ: bytes covered by data and hole chunks so far.</summary>
    public long Covered { get; private set; }

    public uint? Errno { get; set; }
    public string? ErrorMessage { get; set; }
    public long? ErrorOffset { get; set; }

    /// <summary>Called when the caller cancels while the reader is filling its buffer (the client then hangs up).</summary>
    public Action<NbdRequest>? CancelledWhileReceiving { get; init; }

    public string Name => NbdProtocol.CommandName(Command);

    /// <summary>The offset to name in messages (none for FLUSH, which has no range).</summary>
    public long? ReportedOffset => Command == NbdProtocol.CmdFlush ? null : Offset;

    public long? ReportedLength => Command == NbdProtocol.CmdFlush ? null : Length;

    public string Description => NbdException.Describe(Name, ReportedOffset, ReportedLength);

    /// <summary>Records that [start, end) of a READ is now known; false if it overlaps earlier content.</summary>
    public bool TryCover(long start, long end)
    {
        if (start < _contiguousEnd || Overlaps(start, end))
        {
            return false;
        }

        if (start == _contiguousEnd)
        {
            _contiguousEnd = end;
        }
        else
        {
            (_scattered ??= []).Add((start, end));
        }

        Covered += end - start;
        return true;
    }

    private bool Overlaps(long start, long end)
    {
        if (_scattered is null)
        {
            return false;
        }

        foreach (var (s, e) in _scattered)
        {
            if (start < e && s < end)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The reader is about to fill <see cref="ReadBuffer"/>; false if the caller has gone (discard the data).</summary>
    public bool TryBeginReceive()
    {
        lock (_gate)
        {
            if (_abandoned || _finished)
            {
                return false;
            }

            _receiving = true;
            return true;
        }
    }

    public void EndReceive()
    {
        bool cancelNow;
        lock (_gate)
        {
            _receiving = false;
            cancelNow = _abandoned && !_finished;
            if (cancelNow)
            {
                _finished = true;
            }
        }

        if (cancelNow)
        {
            TrySetCanceled(_cancelledBy);
        }
    }

    public void Cancel(CancellationToken token)
    {
        bool cancelNow;
        lock (_gate)
        {
            if (_finished || _abandoned)
            {
                return;
            }

            _abandoned = true;
            _cancelledBy = token;
            cancelNow = !_receiving;
            if (cancelNow)
            {
                _finished = true;
            }
        }

        if (cancelNow)
        {
            TrySetCanceled(token);
        }
        else
        {
            CancelledWhileReceiving?.Invoke(this);
        }
    }

    public void Succeed()
    {
        if (TryFinish())
        {
            TrySetResult();
        }
    }

    public void Fail(Exception exception)
    {
        if (TryFinish())
        {
            TrySetException(exception);
        }
    }

    private bool TryFinish()
    {
        lock (_gate)
        {
            if (_finished)
            {
                return false;
            }

            _finished = true;
            return true;
        }
    }
}
