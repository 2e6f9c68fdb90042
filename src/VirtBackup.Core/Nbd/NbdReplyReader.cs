using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// The single loop, on its own thread, that reads every reply from the server and dispatches it by handle
/// to the pending request. Each reply is checked against its request; anything the protocol forbids throws
/// <see cref="NbdProtocolViolation"/>, which ends the connection (the client then fails all pending requests).
/// It never runs caller code: completing a request schedules the caller's continuation elsewhere.
/// </summary>
internal sealed partial class NbdReplyReader(
    NbdSocketReader input,
    NbdRequestTable requests,
    bool structuredReplies,
    IReadOnlyDictionary<uint, string> contexts)
{
    /// <summary>Raised when the server answers ESHUTDOWN: the client must stop sending requests.</summary>
    public Action? ServerShuttingDown { get; init; }

    /// <summary>Runs until the server closes the connection cleanly (returns) or something fails (throws).</summary>
    public void Run()
    {
        while (input.WaitForMessage())
        {
            var magic = BinaryPrimitives.ReadUInt32BigEndian(input.Read(4));
            if (magic == SimpleReplyMagic)
            {
                OnSimpleReply();
            }
            else if (magic == StructuredReplyMagic)
            {
                if (!structuredReplies)
                {
                    throw new NbdProtocolViolation(null, "a structured reply chunk arrived although structured replies were not negotiated");
                }

                OnChunk();
            }
            else
            {
                throw new NbdProtocolViolation(null, $"reply magic 0x{magic:x8} is neither a simple nor a structured reply (the reply stream is garbled)");
            }
        }
    }

    private void OnSimpleReply()
    {
        var reply = NbdSimpleReply.Parse(input.Read(NbdSimpleReply.SizeAfterMagic));
        var request = Find(reply.Handle, "simple reply");
        if (reply.Errno != 0)
        {
            // No payload follows an error, whatever the command.
            request.Errno = reply.Errno;
            Finish(request);
            return;
        }

        if (request.Command == CmdRead)
        {
            if (structuredReplies)
            {
                throw new NbdProtocolViolation(request, "a simple reply to READ although structured replies were negotiated");
            }

            request.TryCover(request.Offset, request.End);
            Receive(request, request.Offset, (int)request.Length);
        }
        else if (request.Command == CmdBlockStatus)
        {
            throw new NbdProtocolViolation(request, "a simple reply without error to BLOCK_STATUS, which needs block-status chunks");
        }

        Finish(request);
    }

    private NbdRequest Find(ulong handle, string what) =>
        requests.Find(handle)
        ?? throw new NbdProtocolViolation(null, $"{what} with handle 0x{handle:x16}, which matches no request in flight");

    /// <summary>Receives payload bytes straight into the request's buffer, or discards them if the caller cancelled.</summary>
    private void Receive(NbdRequest request, long offset, int count)
    {
        if (!request.TryBeginReceive())
        {
            input.Skip(count);
            return;
        }

        try
        {
            input.ReadExactly(request.ReadBuffer.Span.Slice((int)(offset - request.Offset), count));
        }
        finally
        {
            request.EndReceive();
        }
    }

    private static void ZeroFill(NbdRequest request, long offset, int count)
    {
        if (!request.TryBeginReceive())
        {
            return;
        }

        try
        {
            request.ReadBuffer.Span.Slice((int)(offset - request.Offset), count).Clear();
        }
        finally
        {
            request.EndReceive();
        }
    }

    /// <summary>The reply is complete: check it is whole, then complete the caller's task.</summary>
    private void Finish(NbdRequest request)
    {
        if (request.Errno is { } errno)
        {
            if (errno == EShutdown)
            {
                ServerShuttingDown?.Invoke();
            }

            requests.Remove(request.Handle);
            request.Fail(NbdException.ServerReported(request.Name, request.ReportedOffset, request.ReportedLength, errno, request.ErrorMessage, request.ErrorOffset));
            return;
        }

        if (request.Command == CmdRead && request.Covered != request.Length)
        {
            throw new NbdProtocolViolation(request, $"the reply ended after delivering only {request.Covered} of {request.Length} bytes");
        }

        if (request.Command == CmdBlockStatus)
        {
            NbdBlockStatus.CheckComplete(request, contexts);
        }

        requests.Remove(request.Handle);
        request.Succeed();
    }
}
