using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>The prepared state read and the directory operations the restore needs, on this machine.</summary>
public sealed partial class LocalHostFiles
{
    /// <summary>A dry run of the read: the real one then finds its code compiled and the files in the page cache.</summary>
    public async Task<IPreparedStateRead> PrepareStateReadAsync(string? file, string? directory, CancellationToken cancellationToken)
    {
        var read = new LocalStateRead(this, file, directory);
        await read.ReadAsync(cancellationToken);
        return read;
    }

    private Task<HostFileStatus?> StatCoreAsync(string path, CancellationToken cancellationToken)
    {
        HostPaths.Absolute(path, nameof(path));
        HostFileStatus? status = null;
        if (Directory.Exists(path))
        {
            status = new HostFileStatus(true, 0, Directory.GetLastWriteTimeUtc(path).Ticks);
        }
        else if (File.Exists(path))
        {
            var info = new FileInfo(path);
            status = new HostFileStatus(false, info.Length, info.LastWriteTimeUtc.Ticks);
        }

        return Task.FromResult(status);
    }

    private Task CreateDirectoryCoreAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        HostPaths.Absolute(path, nameof(path));
        HostPaths.Octal(mode, nameof(mode));
        // Directory.CreateDirectory gives the mode to the last directory only: create the missing ones outermost first.
        var missing = new Stack<string>();
        for (var directory = path; !Directory.Exists(directory); directory = Path.GetDirectoryName(directory)!)
        {
            missing.Push(directory);
        }

        foreach (var directory in missing)
        {
            Directory.CreateDirectory(directory, mode);
            // mkdir(2) applies the umask: a restored disk directory must be 0711 (QEMU traverses it) even under umask 077.
            File.SetUnixFileMode(directory, mode);
        }

        return Task.CompletedTask;
    }

    private Task<string> CreatePrivateDirectoryCoreAsync(string parent, string prefix, CancellationToken cancellationToken)
    {
        HostPaths.Absolute(parent, nameof(parent));
        if (prefix.Length == 0 || prefix.Contains('/') || prefix.Contains('\0'))
        {
            throw new ArgumentException($"'{prefix}' is not a file name prefix", nameof(prefix));
        }

        return Task.FromResult(Posix.CreateTemporaryDirectory(Path.Combine(parent, prefix)));
    }

    private Task MoveCoreAsync(string source, string destination, CancellationToken cancellationToken)
    {
        Posix.Rename(HostPaths.Absolute(source, nameof(source)), HostPaths.Absolute(destination, nameof(destination)));
        return Task.CompletedTask;
    }

    private Task SyncCoreAsync(string path, CancellationToken cancellationToken)
    {
        Platform.Posix.FsyncDirectory(HostPaths.Absolute(path, nameof(path)));
        return Task.CompletedTask;
    }

    /// <summary>The two plain reads.</summary>
    private sealed class LocalStateRead(LocalHostFiles files, string? file, string? directory) : IPreparedStateRead
    {
        public async Task<(byte[]? File, IReadOnlyList<HostFile> Tree)> ReadAsync(CancellationToken cancellationToken)
        {
            var content = file is null ? null : await files.ReadFileAsync(file, cancellationToken);
            var tree = directory is null ? [] : await files.ReadTreeAsync(directory, cancellationToken);
            return (content, tree);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
