using System.Text.RegularExpressions;
using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>
/// A private directory for one backup job's NBD socket, removed afterwards. QEMU creates the socket,
/// so the directory must be writable by the QEMU process; it is otherwise closed to everyone else
/// (anyone who can connect to the socket can read the disks).
/// <para>
/// As root: <c>/run/virtbackup/UUID-PID</c>, 0700 and owned by QEMU's uid and gid. As another user (who cannot
/// chown): <c>/tmp/virtbackup-UID/UUID-PID</c>, 0770 with QEMU's group, which that user must belong to (QEMU
/// creates the socket group-writable, so the user can then connect to it).
/// </para>
/// </summary>
public sealed partial class JobRuntimeDirectory : IDisposable
{
    public const string Root = "/run/virtbackup";

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Traversable = Private | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode GroupShared = Private | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute;

    private JobRuntimeDirectory(string path) => Path = path;

    public string Path { get; }

    public string SocketPath => System.IO.Path.Combine(Path, "nbd.sock");

    /// <summary>Where this process keeps its job directories: <see cref="Root"/> as root, else a directory of its own in /tmp.</summary>
    public static string RootFor(int effectiveUserId) =>
        effectiveUserId == 0 ? Root : System.IO.Path.Combine("/tmp", $"virtbackup-{effectiveUserId}");

    /// <param name="qemuProcessIds">The running QEMU's uid and gid (from the live XML), which must create the socket.</param>
    public static JobRuntimeDirectory Create(string domainUuid, (int Uid, int Gid)? qemuProcessIds)
    {
        var euid = Posix.EffectiveUserId;
        var root = RootFor(euid);
        var path = System.IO.Path.Combine(root, $"{domainUuid}-{Environment.ProcessId}");
        if (euid == 0)
        {
            Directory.CreateDirectory(root, Traversable);
            Directory.CreateDirectory(path, Private);
            if (qemuProcessIds is { } ids)
            {
                Posix.Chown(path, ids.Uid, ids.Gid);
            }

            return new JobRuntimeDirectory(path);
        }

        EnsureOwnRoot(root);
        Directory.CreateDirectory(path, Private);
        var directory = new JobRuntimeDirectory(path);
        try
        {
            if (qemuProcessIds is { } ids)
            {
                Posix.Chown(path, euid, ids.Gid);
            }

            File.SetUnixFileMode(path, GroupShared);
            return directory;
        }
        catch (IOException e)
        {
            directory.Dispose();
            throw new PreflightException(
                $"as a user other than root, virtbackup must belong to QEMU's group (gid {qemuProcessIds?.Gid}) so that QEMU can create the backup's "
                + $"NBD socket in '{path}' and this user can connect to it ({e.Message}). Add the user to that group (e.g. usermod -aG libvirt-qemu USER), "
                + "or run as root; the VM was not touched", e);
        }
    }

    /// <summary>
    /// Whether a running job's <c>&lt;domainbackup&gt;</c> XML has its socket in a directory of ours: UUID-PID here, or
    /// UUID-XXXXXX as made with mktemp on a remote host.
    /// </summary>
    public static bool IsOurs(string backupXml) => OurSocket().IsMatch(backupXml);

    /// <summary>
    /// Removes the job directories of <paramref name="domainUuid"/> that virtbackup processes which no longer run
    /// left behind (killed with SIGKILL). Run under the domain lock, after their job was aborted.
    /// </summary>
    public static IReadOnlyList<string> RemoveStale(string domainUuid)
    {
        var removed = new List<string>();
        foreach (var root in new[] { Root, RootFor(Posix.EffectiveUserId) }.Distinct())
        {
            if (!Directory.Exists(root))
            {
                continue;
            }

            // /run/virtbackup is not listable for other users: their own leftovers are elsewhere.
            foreach (var path in Directory.EnumerateDirectories(root, $"{domainUuid}-*", new EnumerationOptions { IgnoreInaccessible = true }))
            {
                var pid = System.IO.Path.GetFileName(path)[(domainUuid.Length + 1)..];
                if (int.TryParse(pid, out var id) && id != Environment.ProcessId && !Directory.Exists($"/proc/{id}"))
                {
                    try
                    {
                        Directory.Delete(path, recursive: true);
                        removed.Add(path);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // Another user's leftover: harmless (empty once its job ended), and not ours to remove.
                    }
                }
            }
        }

        return removed;
    }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }

    /// <summary>
    /// /tmp is shared: a directory someone else made under our name (or a symlink) is refused, never used. Only its
    /// owner can chmod a directory, so setting the mode proves ownership.
    /// </summary>
    private static void EnsureOwnRoot(string root)
    {
        Directory.CreateDirectory(root, Traversable);
        try
        {
            if (new DirectoryInfo(root).LinkTarget is not null)
            {
                throw new IOException("it is a symbolic link");
            }

            File.SetUnixFileMode(root, Traversable);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PreflightException($"'{root}' is not a directory of this user ({e.Message}); remove it and try again. The VM was not touched", e);
        }
    }

    [GeneratedRegex(@"(/run/virtbackup|/tmp/virtbackup-[0-9]+)/[0-9a-f-]{36}-[A-Za-z0-9]+/nbd\.sock")]
    private static partial Regex OurSocket();
}
