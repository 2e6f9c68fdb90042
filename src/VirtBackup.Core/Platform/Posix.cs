using System.Runtime.InteropServices;

namespace VirtBackup.Core.Platform;

/// <summary>The few libc calls .NET does not offer: ownership of files.</summary>
internal static partial class Posix
{
    /// <summary>chown(2); throws <see cref="IOException"/> with errno's text on failure.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (NativeChown(path, uid, gid) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"chown {uid}:{gid} '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeChown(string path, int owner, int group);
}
