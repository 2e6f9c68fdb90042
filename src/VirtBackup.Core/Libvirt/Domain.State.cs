using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>The current state and its reason (<c>virDomainGetState</c>).</summary>
    public DomainStateInfo GetState()
    {
        Check(LibvirtNative.virDomainGetState(_handle, out var state, out var reason, 0), "virDomainGetState", Name);
        return new DomainStateInfo((DomainState)state, reason);
    }

    /// <summary>Whether the domain is running or paused (<c>virDomainIsActive</c>).</summary>
    public bool IsActive() => Check(LibvirtNative.virDomainIsActive(_handle), "virDomainIsActive", Name) == 1;

    /// <summary>Whether the domain has a persistent definition (<c>virDomainIsPersistent</c>).</summary>
    public bool IsPersistent() => Check(LibvirtNative.virDomainIsPersistent(_handle), "virDomainIsPersistent", Name) == 1;

    /// <summary>Pauses all vCPUs (<c>virDomainSuspend</c>). On the capture's critical path: one call, nothing else.</summary>
    public void Suspend() => Check(LibvirtNative.virDomainSuspend(_handle), "virDomainSuspend", Name);

    /// <summary>Resumes the vCPUs (<c>virDomainResume</c>). On the capture's critical path: one call, nothing else.</summary>
    public void Resume() => Check(LibvirtNative.virDomainResume(_handle), "virDomainResume", Name);
}
