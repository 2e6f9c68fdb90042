using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// Turns libvirt failures into <see cref="LibvirtException"/>s and keeps libvirt quiet. libvirt's last
/// error is thread-local and reset by every public call, so each check runs on the caller's thread
/// directly after the failing call, before anything else touches libvirt.
/// </summary>
internal static unsafe class LibvirtErrors
{
    private static readonly Lock InitLock = new();
    private static bool _initialized;

    /// <summary>
    /// Initializes libvirt once and replaces its default error handler (which prints every error to
    /// stderr) with a no-op: errors reach the user through our exceptions and Serilog only.
    /// </summary>
    public static void EnsureInitialized()
    {
        lock (InitLock)
        {
            if (_initialized)
            {
                return;
            }

            LibvirtNative.virSetErrorFunc(0, &Ignore);
            if (LibvirtNative.virInitialize() < 0)
            {
                throw Last("virInitialize", null);
            }

            _initialized = true;
        }
    }

    /// <summary>Silences the per-connection handler too (it takes priority over the global one).</summary>
    public static void Silence(ConnectHandle connection) => LibvirtNative.virConnSetErrorFunc(connection, 0, &Ignore);

    [UnmanagedCallersOnly]
    private static void Ignore(nint userData, nint error)
    {
    }

    /// <summary>Throws the thread's last libvirt error when <paramref name="result"/> is negative.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Check(int result, string operation, string? domainName)
    {
        if (result < 0)
        {
            throw Last(operation, domainName);
        }

        return result;
    }

    /// <summary>Throws the thread's last libvirt error when the returned handle is invalid.</summary>
    public static T Check<T>(T handle, string operation, string? domainName)
        where T : SafeHandle
    {
        if (handle.IsInvalid)
        {
            var error = Last(operation, domainName);
            handle.Dispose();
            throw error;
        }

        return handle;
    }

    /// <summary>Takes ownership of a returned <c>char*</c>: copies it and frees it. Throws when it is NULL.</summary>
    public static string TakeString(nint text, string operation, string? domainName)
    {
        if (text == 0)
        {
            throw Last(operation, domainName);
        }

        try
        {
            return Marshal.PtrToStringUTF8(text) ?? string.Empty;
        }
        finally
        {
            NativeMemory.Free((void*)text);
        }
    }

    /// <summary>Reads a <c>const char*</c> that libvirt keeps owning.</summary>
    public static string PeekString(nint text) => Marshal.PtrToStringUTF8(text) ?? string.Empty;

    /// <summary>
    /// The names of the <paramref name="count"/> objects of an array a <c>virConnectListAll*</c>/<c>virDomainListAll*</c>
    /// call returned; frees each object with <paramref name="free"/>, then the array.
    /// </summary>
    public static IReadOnlyList<string> TakeNames(nint* objects, int count, delegate*<nint, nint> getName, delegate*<nint, int> free)
    {
        var names = new List<string>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                names.Add(PeekString(getName(objects[i])));
            }
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                free(objects[i]);
            }

            NativeMemory.Free(objects);
        }

        return names;
    }

    /// <summary>Said when this user may not open libvirt's socket.</summary>
    public const string SocketAccessHint =
        "This user may not use libvirt's socket: run as root, or add the user to the socket's group (unix_sock_group in libvirtd.conf, usually 'libvirt').";

    /// <summary>Said with RPC errors: every call on this connection fails from now on.</summary>
    public const string ConnectionLostHint = "The connection to libvirtd was lost (did libvirtd restart or stop?).";

    private static bool IsOpen(string operation) => operation.StartsWith("virConnectOpen", StringComparison.Ordinal);

    /// <summary>The thread's last libvirt error as an exception (of the most specific type).</summary>
    public static LibvirtException Last(string operation, string? domainName)
    {
        var error = LibvirtNative.virGetLastError();
        if (error is null)
        {
            return new LibvirtException(operation, domainName, LibvirtErrorCode.InternalError,
                LibvirtErrorDomain.None, "libvirt reported a failure without an error message");
        }

        var code = (LibvirtErrorCode)error->Code;
        var from = (LibvirtErrorDomain)error->Domain;
        var message = error->Message == 0 ? "(no message)" : PeekString(error->Message);
        return Of(operation, domainName, code, from, message);
    }

    /// <summary>libvirt's error <paramref name="code"/> from <paramref name="from"/> as an exception of the most specific type.</summary>
    public static LibvirtException Of(string operation, string? domainName, LibvirtErrorCode code, LibvirtErrorDomain from, string message) =>
        code switch
        {
            LibvirtErrorCode.NoDomain => new DomainNotFoundException(operation, domainName, from, message),
            LibvirtErrorCode.NoDomainCheckpoint => new CheckpointNotFoundException(operation, domainName, from, message),
            LibvirtErrorCode.SystemError when from == LibvirtErrorDomain.Rpc && IsOpen(operation) && message.Contains("Permission denied", StringComparison.Ordinal) =>
                new LibvirtException(operation, domainName, code, from, message, SocketAccessHint),
            LibvirtErrorCode.InternalError or LibvirtErrorCode.SystemError when from == LibvirtErrorDomain.Rpc && !IsOpen(operation) =>
                new LibvirtException(operation, domainName, code, from, message, ConnectionLostHint),
            _ => new LibvirtException(operation, domainName, code, from, message),
        };
}
