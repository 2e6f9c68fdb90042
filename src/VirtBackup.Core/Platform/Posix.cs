using System.Runtime.InteropServices;

namespace VirtBackup.Core.Platform;

/// <summary>The few libc calls .NET does not offer: ownership of files, user lookup, atomic exchange, fsync of directories.</summary>
internal static partial class Posix
{
    private const uint RenameExchangeFlag = 2; // RENAME_EXCHANGE
    private const int AtCurrentDirectory = -100; // AT_FDCWD
    private const int OpenReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY
    private const int Erange = 34;

    /// <summary>chown(2); throws <see cref="IOException"/> with errno's text on failure.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (NativeChown(path, uid, gid) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"chown {uid}:{gid} '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>The effective user id of this process (geteuid(2)).</summary>
    public static int EffectiveUserId => (int)NativeGetEuid();

    /// <summary>
    /// Swaps two existing paths atomically (renameat2 with RENAME_EXCHANGE): afterwards each name refers to what
    /// the other did. Both must be on the same file system.
    /// </summary>
    public static void RenameExchange(string first, string second)
    {
        if (NativeRenameAt2(AtCurrentDirectory, first, AtCurrentDirectory, second, RenameExchangeFlag) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"exchanging '{first}' and '{second}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>fsync(2) of a directory, so the renames and creations in it are durable.</summary>
    public static void FsyncDirectory(string path)
    {
        var fd = NativeOpen(path, OpenReadOnlyDirectory);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"opening directory '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        try
        {
            if (NativeFsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
        finally
        {
            NativeClose(fd);
        }
    }

    /// <summary>The uid and primary gid of user <paramref name="name"/> (getpwnam_r), or null when there is no such user.</summary>
    public static unsafe (int Uid, int Gid)? LookupUser(string name)
    {
        // struct passwd on 64-bit Linux: pw_name, pw_passwd (pointers), then pw_uid, pw_gid (uint32 each).
        var entry = stackalloc byte[64];
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                var error = NativeGetpwnamR(name, entry, b, (nuint)size, out var result);
                if (error == Erange)
                {
                    continue;
                }

                if (error != 0)
                {
                    throw new IOException($"looking up user '{name}' failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
                }

                return result == 0 ? null : ((int)*(uint*)(entry + 16), (int)*(uint*)(entry + 20));
            }
        }

        throw new IOException($"looking up user '{name}' failed: the entry is too large");
    }

    /// <summary>The gid of group <paramref name="name"/> (getgrnam_r), or null when there is no such group.</summary>
    public static unsafe int? LookupGroup(string name)
    {
        // struct group on 64-bit Linux: gr_name, gr_passwd (pointers), then gr_gid (uint32).
        var entry = stackalloc byte[64];
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                var error = NativeGetgrnamR(name, entry, b, (nuint)size, out var result);
                if (error == Erange)
                {
                    continue;
                }

                if (error != 0)
                {
                    throw new IOException($"looking up group '{name}' failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
                }

                return result == 0 ? null : (int)*(uint*)(entry + 16);
            }
        }

        throw new IOException($"looking up group '{name}' failed: the entry is too large");
    }

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeChown(string path, int owner, int group);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint NativeGetEuid();

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeRenameAt2(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int fd);

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeGetpwnamR(string name, byte* entry, byte* buffer, nuint size, out nint result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeGetgrnamR(string name, byte* entry, byte* buffer, nuint size, out nint result);
}
