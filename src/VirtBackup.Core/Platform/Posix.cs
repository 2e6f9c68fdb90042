using System.Runtime.InteropServices;
using System.Text;

namespace VirtBackup.Core.Platform;

/// <summary>
/// The few libc calls .NET does not offer, all in one place: ownership of files, atomic rename and exchange, fsync of
/// directories, mkdtemp; user and group lookup in Posix.Users.cs.
/// </summary>
internal static partial class Posix
{
    private const uint RenameExchangeFlag = 2; // RENAME_EXCHANGE
    private const int AtCurrentDirectory = -100; // AT_FDCWD
    private const int OpenReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY
    private const int Erange = 34; // getpwnam_r/getgrnam_r: the buffer is too small
    private const int Esrch = 3; // kill: no such process
    private const int SignalInterrupt = 2; // SIGINT
    /// <summary>An owner or group id that <see cref="ChangeOwner"/> leaves as it is ((uid_t)-1).</summary>
    public const uint NoChange = uint.MaxValue;

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

    /// <summary>Creates a new directory from <paramref name="prefix"/> + 6 random characters with mode 0700,
    /// atomically (mkdtemp(3)); returns its path.</summary>
    public static string CreateTemporaryDirectory(string prefix)
    {
        var template = Encoding.UTF8.GetBytes(prefix + "XXXXXX\0");
        if (NativeMkdtemp(template) == IntPtr.Zero)
        {
            throw Error($"cannot create a temporary directory '{prefix}XXXXXX'");
        }

        return Encoding.UTF8.GetString(template, 0, template.Length - 1);
    }

    /// <summary>lchown(2): changes the owner of <paramref name="path"/> itself (never a symlink's target).</summary>
    public static void ChangeOwner(string path, uint userId, uint groupId)
    {
        if (NativeLchown(path, userId, groupId) != 0)
        {
            throw Error($"cannot change the owner of '{path}' to {userId}:{groupId}");
        }
    }

    /// <summary>rename(2): atomic within a file system, for any kind of file.</summary>
    public static void Rename(string source, string destination)
    {
        if (NativeRename(source, destination) != 0)
        {
            throw Error($"cannot rename '{source}' to '{destination}'");
        }
    }

    /// <summary>kill(2) with SIGINT; a process that is already gone is no error (its exit status says what happened).</summary>
    public static void Interrupt(int processId)
    {
        if (NativeKill(processId, SignalInterrupt) != 0 && Marshal.GetLastPInvokeError() != Esrch)
        {
            throw Error($"cannot send SIGINT to process {processId}");
        }
    }

    private static IOException Error(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
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

    [LibraryImport("libc", EntryPoint = "mkdtemp", SetLastError = true)]
    private static partial IntPtr NativeMkdtemp([In, Out] byte[] template);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeLchown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeRename(string source, string destination);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int NativeKill(int processId, int signal);

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeGetpwnamR(string name, byte* entry, byte* buffer, nuint size, out nint result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeGetgrnamR(string name, byte* entry, byte* buffer, nuint size, out nint result);
}
