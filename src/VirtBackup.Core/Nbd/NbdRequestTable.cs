namespace VirtBackup.Core.Nbd;

/// <summary>
/// Requests in flight by handle. Once the connection is finished, the table is closed: pending requests
/// are handed back to be failed, and new ones are refused with the reason the connection ended.
/// </summary>
internal sealed class NbdRequestTable
{
    private readonly Dictionary<ulong, NbdRequest> _requests = [];
    private Func<NbdRequest, Exception>? _closedReason;

    public int Count
    {
        get
        {
            lock (_requests)
            {
                return _requests.Count;
            }
        }
    }

    public bool TryAdd(NbdRequest request, out Exception? refusal)
    {
        lock (_requests)
        {
            if (_closedReason is not null)
            {
                refusal = _closedReason(request);
                return false;
            }

            _requests.Add(request.Handle, request);
            refusal = null;
            return true;
        }
    }

    public NbdRequest? Find(ulong handle)
    {
        lock (_requests)
        {
            return _requests.GetValueOrDefault(handle);
        }
    }

    public bool Remove(ulong handle)
    {
        lock (_requests)
        {
            return _requests.Remove(handle);
        }
    }

    /// <summary>Refuses further requests and returns those still pending (the caller fails them).</summary>
    public List<NbdRequest> Close(Func<NbdRequest, Exception> reason)
    {
        lock (_requests)
        {
            _closedReason ??= reason;
            var pending = _requests.Values.ToList();
            _requests.Clear();
            return pending;
        }
    }
}
