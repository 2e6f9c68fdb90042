using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// An open libvirt connection (<c>virConnectOpen</c>): <c>qemu:///system</c> locally, or a remote URI
/// such as <c>qemu+ssh://root@host/system</c> (libvirt runs <c>ssh</c>, so keys must be set up).
/// Thread-safe; closed on dispose. Domains looked up through it stay usable after it is disposed
/// (libvirt keeps the connection alive until the last domain handle is freed).
/// </summary>
public sealed class LibvirtConnection : IDomainConnection
{
    public const string SystemUri = "qemu:///system";

    private readonly ConnectHandle _handle;

    private LibvirtConnection(ConnectHandle handle, string uri)
    {
        _handle = handle;
        Uri = uri;
    }

    /// <summary>The URI this connection was opened with.</summary>
    public string Uri { get; }

    /// <summary>Opens a read-write connection to <paramref name="uri"/>.</summary>
    public static LibvirtConnection Open(string uri = SystemUri)
    {
        EnsureInitialized();
        var handle = Check(LibvirtNative.virConnectOpen(uri), $"virConnectOpen('{uri}')", null);
        Silence(handle);
        return new LibvirtConnection(handle, uri);
    }

    /// <summary>
    /// Whether the connection still works as far as libvirt knows (<c>virConnectIsAlive</c>); false once a call
    /// found the daemon gone (libvirtd restarted), in which case only a new connection helps.
    /// </summary>
    public bool IsAlive => LibvirtNative.virConnectIsAlive(_handle) == 1;

    /// <summary>The domain called <paramref name="name"/>, or <see cref="DomainNotFoundException"/>.</summary>
    public Domain LookupByName(string name) =>
        new(Check(LibvirtNative.virDomainLookupByName(_handle, name), "virDomainLookupByName", name));

    /// <summary>The domain with <paramref name="uuid"/> (canonical text form), or <see cref="DomainNotFoundException"/>.</summary>
    public Domain LookupByUuid(string uuid) =>
        new(Check(LibvirtNative.virDomainLookupByUUIDString(_handle, uuid), "virDomainLookupByUUIDString", uuid));

    IDomain IDomainConnection.LookupDomainByUuid(string uuid) => LookupByUuid(uuid);

    IDomainConnection IDomainConnection.Reopen() => Open(Uri);

    /// <summary>The domain called <paramref name="name"/>, or null when there is none.</summary>
    public Domain? TryLookupByName(string name)
    {
        try
        {
            return LookupByName(name);
        }
        catch (DomainNotFoundException)
        {
            // Absence is the answer the caller asked for.
            return null;
        }
    }

    /// <summary>Defines (or redefines) a persistent domain from XML (<c>virDomainDefineXML</c>).</summary>
    public Domain Define(string xml) => new(Check(LibvirtNative.virDomainDefineXML(_handle, xml), "virDomainDefineXML", null));

    /// <summary>The names of all domains, running or not.</summary>
    public unsafe IReadOnlyList<string> ListDomainNames()
    {
        var count = Check(LibvirtNative.virConnectListAllDomains(_handle, out var domains, 0), "virConnectListAllDomains", null);
        return TakeNames(domains, count, &LibvirtNative.virDomainGetName, &LibvirtNative.virDomainFree);
    }

    public void Dispose() => _handle.Dispose();
}
