using System.Runtime.InteropServices;

namespace VirtBackup.Core.Platform;

/// <summary>Who owns a path and which groups a user is in (statx, getgrouplist): for the restore's check that QEMU can reach its disks.</summary>
internal static partial class Posix
{
    private const int StatxBasicStats = 0x7ff; // STATX_BASIC_STATS
    private const int Enoent = 2;
    private const int Enotdir = 20;

    /// <summary>Owner, group and mode (type and permission bits) of <paramref name="path"/>, symlinks followed; null when nothing is there.</summary>
    public static unsafe (int Uid, int Gid, int Mode)? Ownership(string path)
    {
        // struct statx is the same on every architecture: stx_uid at 20, stx_gid at 24, stx_mode (16 bits) at 28.
        var buffer = stackalloc byte[256];
        if (NativeStatx(AtCurrentDirectory, path, 0, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is Enoent or Enotdir
                ? null
                : throw new IOException($"statx '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        return ((int)*(uint*)(buffer + 20), (int)*(uint*)(buffer + 24), *(ushort*)(buffer + 28));
    }

    /// <summary>getgrouplist(3): <paramref name="gid"/> (the user's primary group, as <c>id -G</c> counts it) and every group that lists <paramref name="user"/> as a member.</summary>
    public static unsafe IReadOnlyList<int> GroupList(string user, int gid)
    {
        for (var size = 64; size <= 1 << 16; size *= 4)
        {
            var groups = new uint[size];
            var count = size;
            fixed (uint* g = groups)
            {
                if (NativeGetgrouplist(user, (uint)gid, g, ref count) >= 0)
                {
                    return groups.Take(count).Select(id => (int)id).ToList();
                }
            }
        }

        throw new IOException($"looking up the groups of user '{user}' failed: too many groups");
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeStatx(int directory, string path, int flags, int mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "getgrouplist", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeGetgrouplist(string user, uint group, uint* groups, ref int count);
}
