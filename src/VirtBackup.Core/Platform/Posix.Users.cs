using System.Globalization;
using System.Runtime.InteropServices;

namespace VirtBackup.Core.Platform;

/// <summary>User and group lookups (getpwnam_r, getgrnam_r).</summary>
internal static partial class Posix
{
    /// <summary>The uid of a user name, or of a number; throws when there is no such user.</summary>
    public static uint UserId(string user) =>
        uint.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : (uint)(LookupUser(user) ?? throw new IOException($"there is no user '{user}' on this host")).Uid;

    /// <summary>The gid of a group name, or of a number; throws when there is no such group.</summary>
    public static uint GroupId(string group) =>
        uint.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : (uint)(LookupGroup(group) ?? throw new IOException($"there is no group '{group}' on this host"));

    /// <summary>The uid and primary gid of user <paramref name="name"/> (getpwnam_r), or null when there is no such user.</summary>
    public static unsafe (int Uid, int Gid)? LookupUser(string name)
    {
        // struct passwd on 64-bit Linux: pw_name, pw_passwd (pointers), then pw_uid, pw_gid (uint32 each).
        var entry = stackalloc byte[64];
        return LookUp("user", name, &NativeGetpwnamR, entry) ? ((int)*(uint*)(entry + 16), (int)*(uint*)(entry + 20)) : null;
    }

    /// <summary>The gid of group <paramref name="name"/> (getgrnam_r), or null when there is no such group.</summary>
    public static unsafe int? LookupGroup(string name)
    {
        // struct group on 64-bit Linux: gr_name, gr_passwd (pointers), then gr_gid (uint32).
        var entry = stackalloc byte[64];
        return LookUp("group", name, &NativeGetgrnamR, entry) ? (int)*(uint*)(entry + 16) : null;
    }

    /// <summary>
    /// Runs a getpwnam_r-like <paramref name="lookup"/> into <paramref name="entry"/>, with a larger buffer while the
    /// entry's strings do not fit (ERANGE). Whether there is such an entry.
    /// </summary>
    private static unsafe bool LookUp(
        string what, string name, delegate*<string, byte*, byte*, nuint, out nint, int> lookup, byte* entry)
    {
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                var error = lookup(name, entry, b, (nuint)size, out var result);
                if (error == Erange)
                {
                    continue;
                }

                if (error != 0)
                {
                    throw new IOException($"looking up {what} '{name}' failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
                }

                return result != 0;
            }
        }

        throw new IOException($"looking up {what} '{name}' failed: the entry is too large");
    }
}
