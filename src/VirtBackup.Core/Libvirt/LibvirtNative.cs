using System.Runtime.InteropServices;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// Every libvirt entry point VirtBackup calls, in one place. Strings go in as UTF-8. A returned
/// <c>char*</c> that the caller owns is declared <see cref="nint"/> and taken with
/// <see cref="LibvirtErrors.TakeString"/> (which frees it with <c>free</c>); a returned
/// <c>const char*</c> (names) is read and never freed. Failures are turned into exceptions by
/// <see cref="LibvirtErrors"/> right after the call, on the same thread (libvirt's last error is
/// thread-local).
/// </summary>
internal static unsafe partial class LibvirtNative
{
    private const string Lib = "libvirt.so.0";
    private const string QemuLib = "libvirt-qemu.so.0";

    /// <summary>Layout of the head of <c>virError</c> (code, domain, message, level).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirError
    {
        public int Code;
        public int Domain;
        public nint Message;
        public int Level;
    }

    /// <summary><c>virTypedParameter</c>: field[80], type, then an 8-byte value union.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirTypedParameter
    {
        public fixed byte Field[80];
        public int Type;
        public long Value;
    }

    /// <summary><c>virDomainJobInfo</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainJobInfo
    {
        public int Type;
        public ulong TimeElapsed, TimeRemaining;
        public ulong DataTotal, DataProcessed, DataRemaining;
        public ulong MemTotal, MemProcessed, MemRemaining;
        public ulong FileTotal, FileProcessed, FileRemaining;
    }

    /// <summary><c>virDomainBlockInfo</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainBlockInfo
    {
        public ulong Capacity, Allocation, Physical;
    }

    /// <summary><c>virDomainBlockJobInfo</c>: type, bandwidth (<c>unsigned long</c>), cur and end.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainBlockJobInfo
    {
        public int Type;
        public nuint Bandwidth;
        public ulong Cur, End;
    }

    // Library and errors
    [LibraryImport(Lib)] internal static partial int virInitialize();
    [LibraryImport(Lib)] internal static partial VirError* virGetLastError();
    [LibraryImport(Lib)] internal static partial void virResetLastError();
    [LibraryImport(Lib)] internal static partial void virSetErrorFunc(nint userData, delegate* unmanaged<nint, nint, void> handler);
    [LibraryImport(Lib)] internal static partial void virConnSetErrorFunc(ConnectHandle conn, nint userData, delegate* unmanaged<nint, nint, void> handler);
    [LibraryImport(Lib)] internal static partial int virTypedParamsFree(VirTypedParameter* parameters, int count);

    // Connections
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial ConnectHandle virConnectOpen(string? name);
    [LibraryImport(Lib)] internal static partial int virConnectClose(nint conn);
    [LibraryImport(Lib)] internal static partial int virConnectIsAlive(ConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectListAllDomains(ConnectHandle conn, out nint* domains, uint flags);

    // Domains: lookup, definition, lifecycle
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial DomainHandle virDomainLookupByName(ConnectHandle conn, string name);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial DomainHandle virDomainLookupByUUIDString(ConnectHandle conn, string uuid);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial DomainHandle virDomainDefineXML(ConnectHandle conn, string xml);
    [LibraryImport(Lib)] internal static partial int virDomainFree(nint domain);
    [LibraryImport(Lib)] internal static partial nint virDomainGetName(DomainHandle domain);
    [LibraryImport(Lib)] internal static partial nint virDomainGetName(nint domain);
    [LibraryImport(Lib)] internal static partial int virDomainGetUUIDString(DomainHandle domain, byte* buffer);
    [LibraryImport(Lib)] internal static partial nint virDomainGetXMLDesc(DomainHandle domain, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCreateWithFlags(DomainHandle domain, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainDestroy(DomainHandle domain);
    [LibraryImport(Lib)] internal static partial int virDomainUndefineFlags(DomainHandle domain, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainIsPersistent(DomainHandle domain);
    [LibraryImport(Lib)] internal static partial int virDomainIsActive(DomainHandle domain);

    // Domains: state
    [LibraryImport(Lib)] internal static partial int virDomainGetState(DomainHandle domain, out int state, out int reason, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSuspend(DomainHandle domain);
    [LibraryImport(Lib)] internal static partial int virDomainResume(DomainHandle domain);

    // Domains: backup jobs
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBackupBegin(DomainHandle domain, string backupXml, string? checkpointXml, uint flags);
    [LibraryImport(Lib)] internal static partial nint virDomainBackupGetXMLDesc(DomainHandle domain, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainAbortJob(DomainHandle domain);
    [LibraryImport(Lib)] internal static partial int virDomainGetJobInfo(DomainHandle domain, out VirDomainJobInfo info);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainGetBlockInfo(DomainHandle domain, string disk, out VirDomainBlockInfo info, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainGetJobStats(DomainHandle domain, out int type, out VirTypedParameter* parameters, out int count, uint flags);

    // Block jobs
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBlockPull(DomainHandle domain, string disk, nuint bandwidth, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainGetBlockJobInfo(DomainHandle domain, string disk, out VirDomainBlockJobInfo info, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBlockJobAbort(DomainHandle domain, string disk, uint flags);

    // Checkpoints
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial CheckpointHandle virDomainCheckpointCreateXML(DomainHandle domain, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial CheckpointHandle virDomainCheckpointLookupByName(DomainHandle domain, string name, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainListAllCheckpoints(DomainHandle domain, out nint* checkpoints, uint flags);
    [LibraryImport(Lib)] internal static partial nint virDomainCheckpointGetName(CheckpointHandle checkpoint);
    [LibraryImport(Lib)] internal static partial nint virDomainCheckpointGetName(nint checkpoint);
    [LibraryImport(Lib)] internal static partial nint virDomainCheckpointGetXMLDesc(CheckpointHandle checkpoint, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCheckpointDelete(CheckpointHandle checkpoint, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCheckpointFree(nint checkpoint);

    // Guest agent and file systems
    [LibraryImport(Lib)] internal static partial int virDomainFSFreeze(DomainHandle domain, nint* mountpoints, uint count, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainFSThaw(DomainHandle domain, nint* mountpoints, uint count, uint flags);
    [LibraryImport(QemuLib, StringMarshalling = StringMarshalling.Utf8)] internal static partial nint virDomainQemuAgentCommand(DomainHandle domain, string command, int timeout, uint flags);
    [LibraryImport(QemuLib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainQemuMonitorCommand(DomainHandle domain, string command, out nint result, uint flags);
}
