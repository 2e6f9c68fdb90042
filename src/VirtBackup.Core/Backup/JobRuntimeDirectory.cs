namespace VirtBackup.Core.Backup;

/// <summary>
/// A private directory for one backup job's NBD socket, removed afterwards. QEMU creates the socket,
/// so the directory must be writable by the QEMU process; it is otherwise closed to everyone else
/// (anyone who can connect to the socket can read the disks).
/// </summary>
public sealed class JobRuntimeDirectory : IDisposable
{
    public const string Root = "/run/virtbackup";

    private JobRuntimeDirectory(string path) => Path = path;

    public string Path { get; }

    public string SocketPath => System.IO.Path.Combine(Path, "nbd.sock");

    /// <param name="qemuProcessIds">The running QEMU's uid and gid (from the live XML), which must create the socket.</param>
    public static JobRuntimeDirectory Create(string domainUuid, (int Uid, int Gid)? qemuProcessIds)
    {
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherExecute | UnixFileMode.GroupExecute);
        var path = System.IO.Path.Combine(Root, $"{domainUuid}-{Environment.ProcessId}");
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (qemuProcessIds is { } ids)
        {
            Platform.Posix.Chown(path, ids.Uid, ids.Gid);
        }

        return new JobRuntimeDirectory(path);
    }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
