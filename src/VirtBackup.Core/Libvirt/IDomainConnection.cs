namespace VirtBackup.Core.Libvirt;

/// <summary>
/// What the recovery of a failed run needs of a libvirt connection (<see cref="LibvirtConnection"/> implements it):
/// whether it still works, a domain by UUID, and a new connection to the same URI when libvirtd restarted.
/// </summary>
public interface IDomainConnection : IDisposable
{
    /// <summary>See <see cref="LibvirtConnection.IsAlive"/>.</summary>
    bool IsAlive { get; }

    /// <summary>The domain with <paramref name="uuid"/>, or <see cref="DomainNotFoundException"/>.</summary>
    IDomain LookupDomainByUuid(string uuid);

    /// <summary>A new connection to the URI this one was opened with (a <see cref="LibvirtException"/> while libvirtd does not answer).</summary>
    IDomainConnection Reopen();
}
