namespace VirtBackup.Core.Libvirt;

/// <summary>
/// A libvirt call failed. Carries libvirt's own error (code, the part of libvirt that raised it, its
/// message) as read with <c>virGetLastError</c> on the failing thread, plus which call failed and on
/// which domain.
/// </summary>
public class LibvirtException : VirtBackupException
{
    internal LibvirtException(string operation, string? domainName, LibvirtErrorCode code,
        LibvirtErrorDomain errorDomain, string libvirtMessage, string? hint = null)
        : base(Describe(operation, domainName, code, libvirtMessage) + (hint is null ? "" : " " + hint))
    {
        Operation = operation;
        DomainName = domainName;
        Code = code;
        ErrorDomain = errorDomain;
        LibvirtMessage = libvirtMessage;
    }

    public override ErrorCategory Category => ErrorCategory.Libvirt;

    /// <summary>The libvirt function that failed, e.g. <c>virDomainBackupBegin</c>.</summary>
    public string Operation { get; }

    /// <summary>The domain (VM) the call was about, when there was one.</summary>
    public string? DomainName { get; }

    /// <summary>libvirt's <c>virErrorNumber</c>.</summary>
    public LibvirtErrorCode Code { get; }

    /// <summary>libvirt's <c>virErrorDomain</c> (VIR_FROM_*), not the VM.</summary>
    public LibvirtErrorDomain ErrorDomain { get; }

    /// <summary>libvirt's message, verbatim.</summary>
    public string LibvirtMessage { get; }

    private static string Describe(string operation, string? domainName, LibvirtErrorCode code, string message) =>
        domainName is null
            ? $"libvirt {operation} failed: {message} (libvirt error {(int)code})"
            : $"libvirt {operation} failed for domain '{domainName}': {message} (libvirt error {(int)code})";
}

/// <summary>The domain does not exist (VIR_ERR_NO_DOMAIN): a lookup found nothing, or it went away.</summary>
public sealed class DomainNotFoundException : LibvirtException
{
    internal DomainNotFoundException(string operation, string? domainName, LibvirtErrorDomain errorDomain, string libvirtMessage)
        : base(operation, domainName, LibvirtErrorCode.NoDomain, errorDomain, libvirtMessage,
            "Check the name or UUID with 'virsh list --all' on the libvirt host.")
    {
    }
}

/// <summary>The checkpoint does not exist (VIR_ERR_NO_DOMAIN_CHECKPOINT).</summary>
public sealed class CheckpointNotFoundException : LibvirtException
{
    internal CheckpointNotFoundException(string operation, string? domainName, LibvirtErrorDomain errorDomain, string libvirtMessage)
        : base(operation, domainName, LibvirtErrorCode.NoDomainCheckpoint, errorDomain, libvirtMessage,
            "List the domain's checkpoints with 'virsh checkpoint-list'.")
    {
    }
}
