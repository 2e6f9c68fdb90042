namespace VirtBackup.Core.Libvirt;

/// <summary>
/// libvirt's <c>virErrorNumber</c> values VirtBackup looks at (virterror.h names, without VIR_ERR_).
/// A code missing here still arrives intact as its number.
/// </summary>
public enum LibvirtErrorCode
{
    Ok = 0,
    InternalError = 1,
    NoSupport = 3,
    NoConnect = 5,
    InvalidArg = 8,
    OperationFailed = 9,
    XmlError = 27,
    DomainExists = 28,
    OperationDenied = 29,
    SystemError = 38,
    Rpc = 39,
    NoDomain = 42,
    AuthFailed = 45,
    OperationInvalid = 55,
    ConfigUnsupported = 67,
    OperationTimeout = 68,
    ArgumentUnsupported = 74,
    OperationAborted = 78,
    OperationUnsupported = 84,
    AgentUnresponsive = 86,
    ResourceBusy = 87,
    AccessDenied = 88,
    XmlInvalidSchema = 92,
    InvalidDomainCheckpoint = 102,
    NoDomainCheckpoint = 103,
    NoDomainBackup = 104,
    CheckpointInconsistent = 109,
}

/// <summary>libvirt's <c>virErrorDomain</c>: the part of libvirt that raised an error (VIR_FROM_*).</summary>
public enum LibvirtErrorDomain
{
    None = 0,
    Xml = 5,
    Rpc = 7,
    Qemu = 10,
    Remote = 13,
    Storage = 18,
    Domain = 20,
    Security = 24,
    Ssh = 50,
    Access = 55,
    Libssh = 66,
    DomainCheckpoint = 69,
    Tpm = 70,
}
