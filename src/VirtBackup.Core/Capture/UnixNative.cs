using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace VirtBackup.Core.Capture;

/// <summary>The few libc calls .NET has no API for: user and group ids, chown, rename, mkdtemp.</summary>
internal static partial class UnixNative
{
    /// <summary>An owner or group id that <see cref="ChangeOwner"/> leaves as it is ((uid_t)-1).</summary>
    public const uint NoChange = uint.MaxValue;

    /// <summary>Creates a new directory from <paramref name="prefix"/> + 6 random characters with mode 0700,
    /// atomically (mkdtemp(3)); returns its path.</summary>
    public static string CreateTemporaryDirectory(string prefix)
    {
        var template = Encoding.UTF8.GetBytes(prefix + "XXXXXX\0");
        if (MakeTemporaryDirectory(template) == IntPtr.Zero)
        {
            throw Error($"cannot create a temporary directory '{prefix}XXXXXX'");
        }

        return Encoding.UTF8.GetString(template, 0, template.Length - 1);
    }

    /// <summary>lchown(2): changes the owner of <paramref name="path"/> itself (never a symlink's target).</summary>
    public static void ChangeOwner(string path, uint userId, uint groupId)
    {
        if (LChown(path, userId, groupId) != 0)
        {
            throw Error($"cannot change the owner of '{path}' to {userId}:{groupId}");
        }
    }

    /// <summary>rename(2): atomic within a file system, for any kind of file.</summary>
    public static void Rename(string source, string destination)
    {
        if (RenameFile(source, destination) != 0)
        {
            throw Error($"cannot rename '{source}' to '{destination}'");
        }
    }

    /// <summary>The uid of a user name, or of a number.</summary>
    public static uint UserId(string user) =>
        uint.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : LookUp(user, "user", static (name, entry, buffer, length) =>
            {
                var status = GetPasswordEntry(name, entry, buffer, length, out var result);
                return (status, result);
            }, entryOffsetOfId: 16);

    /// <summary>The gid of a group name, or of a number.</summary>
    public static uint GroupId(string group) =>
        uint.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : LookUp(group, "group", static (name, entry, buffer, length) =>
            {
                var status = GetGroupEntry(name, entry, buffer, length, out var result);
                return (status, result);
            }, entryOffsetOfId: 16);

    /// <summary>getpwnam_r/getgrnam_r with a growing buffer. In both struct passwd and struct group
    /// (LP64 glibc) the id follows two pointers: offset 16.</summary>
    private static uint LookUp(string name, string kind, Func<string, IntPtr, IntPtr, nuint, (int Status, IntPtr Result)> call, int entryOffsetOfId)
    {
        var entry = Marshal.AllocHGlobal(256);
        try
        {
            for (var size = 1024; ; size *= 4)
            {
                var buffer = Marshal.AllocHGlobal(size);
                try
                {
                    var (status, result) = call(name, entry, buffer, (nuint)size);
                    if (status == 34 && size < (1 << 24)) // ERANGE: a bigger buffer
                    {
                        continue;
                    }

                    if (status != 0)
                    {
                        throw new IOException($"cannot look up the {kind} '{name}': {Marshal.GetPInvokeErrorMessage(status)}");
                    }

                    if (result == IntPtr.Zero)
                    {
                        throw new IOException($"there is no {kind} '{name}' on this host");
                    }

                    return (uint)Marshal.ReadInt32(entry, entryOffsetOfId);
                }
                finally
                {
                    Marshal.FreeHGlobal(buffer);
                }
            }
        }
        finally
        {
            Marshal.FreeHGlobal(entry);
        }
    }

    private static IOException Error(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [LibraryImport("libc", EntryPoint = "mkdtemp", SetLastError = true)]
    private static partial IntPtr MakeTemporaryDirectory([In, Out] byte[] template);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameFile(string source, string destination);

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetPasswordEntry(string name, IntPtr entry, IntPtr buffer, nuint length, out IntPtr result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetGroupEntry(string name, IntPtr entry, IntPtr buffer, nuint length, out IntPtr result);
}
