using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>Sending requests (one writer at a time), the reply loop, and ending the connection.</summary>
public sealed partial class NbdClient
{
    private static readonly TimeSpan DisconnectTimeout = TimeSpan.FromSeconds(5);

    private readonly NbdRequestTable _requests = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly byte[] _requestHeader = new byte[RequestHeaderSize];
    private readonly Action<NbdRequest> _cancelledWhileReceiving;
    private Task _replyLoop = Task.CompletedTask;
    private long _lastHandle;
    private volatile string? _abortReason;
    private volatile bool _serverShuttingDown;
    private int _disposed;

    /// <summary>
    /// Starts the reply thread. A dedicated thread doing blocking receives is the fast path: no epoll
    /// round trip and no thread-pool hop per receive (10-40% more throughput than async receives when
    /// streaming from qemu-nbd on two cores, in our measurements).
    /// </summary>
    private void StartReplyReader()
    {
        var reader = new NbdReplyReader(_input, _requests, StructuredReplies, _contextNames)
        {
            ServerShuttingDown = () => _serverShuttingDown = true,
        };
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            RunReplyLoop(reader);
            finished.SetResult();
        })
        {
            IsBackground = true,
            Name = "NBD replies",
        };
        thread.Start();
        _replyLoop = finished.Task;
    }

    /// <summary>Sends one request and waits for its complete, validated reply.</summary>
    private async Task<NbdRequest> ExecuteAsync(
        ushort command, ushort flags, long offset, uint length, Memory<byte> readBuffer,
        ReadOnlyMemory<byte> payload, uint contextId, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        var request = new NbdRequest((ulong)Interlocked.Increment(ref _lastHandle), command, flags, offset, length, readBuffer, contextId)
        {
            CancelledWhileReceiving = _cancelledWhileReceiving,
        };
        if (_serverShuttingDown)
        {
            throw new NbdException($"{request.Description}: the server is shutting down (it answered ESHUTDOWN); reconnect later.", request.Name, offset, length);
        }

        if (!_requests.TryAdd(request, out var refusal))
        {
            throw refusal!;
        }

        await SendAsync(request, payload, cancellationToken).ConfigureAwait(false);
        using (cancellationToken.UnsafeRegister(static (state, token) => ((NbdRequest)state!).Cancel(token), request))
        {
            await request.Task.ConfigureAwait(false);
        }

        return request;
    }

    private async Task SendAsync(NbdRequest request, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        try
        {
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            request.Cancel(cancellationToken); // settles it, in case the reply loop fails it concurrently
            _requests.Remove(request.Handle);
            throw;
        }

        try
        {
            NbdRequestHeader.For(request.Command, request.Flags, request.Handle, request.Offset, request.Length).Write(_requestHeader);
            // Blocking and not cancellable: a half-sent request would garble the stream. Abort() unblocks it.
            _transport.Send(_requestHeader);
            if (!payload.IsEmpty)
            {
                _transport.Send(payload.Span);
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // The reply loop notices the dead socket and fails every pending request, this one included.
            Abort($"sending {request.Description} failed: {e.Message}");
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private void RunReplyLoop(NbdReplyReader reader)
    {
        Func<NbdRequest, Exception> failure;
        try
        {
            reader.Run();
            failure = r => NbdException.ServerViolation(r.Name, r.ReportedOffset, r.ReportedLength,
                "the server closed the connection without answering this request");
        }
        catch (NbdProtocolViolation violation)
        {
            _transport.Abort();
            var culprit = violation.Request;
            failure = r => ReferenceEquals(r, culprit)
                ? NbdException.ServerViolation(r.Name, r.ReportedOffset, r.ReportedLength, violation.Problem)
                : NbdException.ServerViolation(r.Name, r.ReportedOffset, r.ReportedLength,
                    $"the connection was dropped after an invalid reply{(culprit is null ? "" : $" to {culprit.Description}")}: {violation.Problem}");
        }
        catch (Exception e)
        {
            _transport.Abort();
            var problem = e is NbdConnectionClosedException
                ? "the server closed the connection in the middle of a reply"
                : $"the connection failed: {e.Message}";
            failure = r => NbdException.ServerViolation(r.Name, r.ReportedOffset, r.ReportedLength, problem, e);
        }

        if (_abortReason is { } reason)
        {
            failure = r => new NbdException($"{r.Description}: {reason}.", r.Name, r.ReportedOffset, r.ReportedLength);
        }

        foreach (var request in _requests.Close(failure))
        {
            request.Fail(failure(request));
        }
    }

    /// <summary>Hard disconnect initiated by the client; pending requests fail with <paramref name="reason"/>.</summary>
    private void Abort(string reason)
    {
        _abortReason ??= reason;
        _transport.Abort();
    }

    /// <summary>
    /// Sends NBD_CMD_DISC (the server answers what is still in flight, then closes), waits briefly for the
    /// server to hang up, and releases the socket.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_abortReason is null && !_replyLoop.IsCompleted)
        {
            try
            {
                if (await _sendLock.WaitAsync(DisconnectTimeout).ConfigureAwait(false))
                {
                    try
                    {
                        NbdRequestHeader.For(CmdDisc, 0, 0, 0, 0).Write(_requestHeader);
                        _transport.Send(_requestHeader);
                        _transport.ShutdownSend();
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // The server is gone already; nothing to be polite to.
            }

            try
            {
                await _replyLoop.WaitAsync(DisconnectTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The server did not hang up after NBD_CMD_DISC; hang up ourselves.
            }
        }

        Abort("the client was disposed");
        await _replyLoop.ConfigureAwait(false);
        _input.Dispose();
        _transport.Dispose();
    }
}
