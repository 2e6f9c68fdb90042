namespace VirtBackup.Tests.Fakes;

/// <summary>
/// A libvirt connection in memory behind <see cref="IDomainConnection"/>: it knows <see cref="Domain"/> (unless
/// null: the domain no longer exists) and can die (<see cref="IsAlive"/> false, as after a libvirtd restart). Reopening
/// fails <see cref="ReopenFailures"/> times (libvirtd still starting), then gives <see cref="Next"/>.
/// </summary>
internal sealed class FakeConnection(FakeDomain? domain) : IDomainConnection
{
    public FakeDomain? Domain { get; set; } = domain;

    public bool IsAlive { get; set; } = true;

    public int ReopenFailures { get; set; }

    public FakeConnection? Next { get; set; }

    public int Reopens { get; private set; }

    public int Lookups { get; private set; }

    public IDomain LookupDomainByUuid(string uuid)
    {
        Lookups++;
        if (!IsAlive)
        {
            throw LibvirtErrors.Of("virDomainLookupByUUIDString", uuid, LibvirtErrorCode.InternalError, LibvirtErrorDomain.Rpc,
                "internal error: client socket is closed");
        }

        return Domain is { } found && found.Uuid == uuid
            ? found
            : throw LibvirtErrors.Of("virDomainLookupByUUIDString", uuid, LibvirtErrorCode.NoDomain, LibvirtErrorDomain.Qemu,
                $"Domain not found: no domain with matching uuid '{uuid}'");
    }

    public IDomainConnection Reopen()
    {
        Reopens++;
        if (Reopens <= ReopenFailures || Next is null)
        {
            throw LibvirtErrors.Of("virConnectOpen('qemu:///system')", null, LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
                "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused");
        }

        OnReopen?.Invoke();
        return Next;
    }

    /// <summary>Runs when a reopen succeeds (the fake libvirtd is back).</summary>
    public Action? OnReopen { get; set; }

    public void Dispose()
    {
    }
}
