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

    /// <summary>The directory <see cref="Create"/> makes for this process and <paramref name="domainUuid"/>.</summary>
    public static string PathFor(string domainUuid) =>
        System.IO.Path.Combine(RootFor(Posix.EffectiveUserId), $"{domainUuid}-{Environment.ProcessId}");

    /// <param name="qemuProcessIds">The running QEMU's uid and gid (from the live XML), which must create the socket.</param>
    public static JobRuntimeDirectory Create(string domainUuid, (int Uid, int Gid)? qemuProcessIds)
    {
        var euid = Posix.EffectiveUserId;
        var root = RootFor(euid);
        var path = PathFor(domainUuid);
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
    /// UUID-RANDOM on a remote host. Removing a killed run's directory is <see cref="HostLeftovers"/>' part.
    /// </summary>
    public static bool IsOurs(string backupXml) => OurSocket().IsMatch(backupXml);

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
