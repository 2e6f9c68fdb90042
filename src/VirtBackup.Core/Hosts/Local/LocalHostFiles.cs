using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Local;

/// <summary><see cref="IHostFiles"/> on this machine.</summary>
public sealed partial class LocalHostFiles : IHostFiles
{
    public Task CheckReadableAsync(string path, string whatItIs, string advice, CancellationToken cancellationToken)
    {
        try
        {
            if (Directory.Exists(path))
            {
                foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories))
                {
                    using var _ = File.OpenRead(file);
                }
            }
            else
            {
                using var _ = File.OpenRead(path);
            }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // Both mean "this process cannot read it": say what and what to do, before the VM is touched.
            throw new PreflightException($"cannot read the {whatItIs} '{path}': {e.Message}. {advice}", e);
        }

        return Task.CompletedTask;
    }

    private Task<byte[]> ReadFileCoreAsync(string path, CancellationToken cancellationToken) =>
        File.ReadAllBytesAsync(path, cancellationToken);

    /// <summary>How often a tree read starts over when a file it listed is gone before it is read.</summary>
    internal const int TreeReadAttempts = 5;

    /// <summary>
    /// Every file below <paramref name="directory"/>. A program that saves a file by writing a temporary one and
    /// renaming it over the old one (swtpm does) can make a listed file vanish before it is read: the whole tree is
    /// then listed and read again, so that no file is left out, up to <see cref="TreeReadAttempts"/> times.
    /// </summary>
    private async Task<IReadOnlyList<HostFile>> ReadTreeCoreAsync(string directory, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var files = new List<HostFile>();
                foreach (var path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    var relative = Path.GetRelativePath(directory, path).Replace(Path.DirectorySeparatorChar, '/');
                    files.Add(new HostFile(relative, await File.ReadAllBytesAsync(path, cancellationToken), File.GetUnixFileMode(path)));
                }

                return files;
            }
            catch (FileNotFoundException) when (attempt < TreeReadAttempts)
            {
                // A file renamed away between the listing and its read: list again.
            }
        }
    }

    private async Task WriteFileCoreAsync(
        string path, ReadOnlyMemory<byte> content, UnixFileMode mode, string? owner, string? group, CancellationToken cancellationToken)
    {
        var (parent, name) = HostPaths.Split(path, nameof(path));
        HostPaths.Octal(mode, nameof(mode));
        var (userId, groupId) = Ids(owner, group);
        if (!Directory.Exists(parent))
        {
            throw new DirectoryNotFoundException($"cannot write '{path}': there is no directory '{parent}'");
        }

        // A private directory next to the target holds the new file until it has its owner and mode.
        var temporary = Posix.CreateTemporaryDirectory(Path.Combine(parent, $".{name}.vbtmp-"));
        try
        {
            var file = Path.Combine(temporary, name);
            await WritePrivateFileAsync(file, content, cancellationToken);
            Posix.ChangeOwner(file, userId, groupId);
            File.SetUnixFileMode(file, mode);
            Posix.Rename(file, path);
        }
        finally
        {
            Directory.Delete(temporary, recursive: true);
        }
    }

    private async Task WriteTreeCoreAsync(
        string directory, IReadOnlyList<HostFile> files, UnixFileMode fileMode, UnixFileMode directoryMode, string? owner, string? group, CancellationToken cancellationToken)
    {
        var (parent, name) = HostPaths.Split(directory, nameof(directory));
        var (directories, ordered) = HostPaths.Layout(files);
        HostPaths.Octal(fileMode, nameof(fileMode));
        HostPaths.Octal(directoryMode, nameof(directoryMode));
        var (userId, groupId) = Ids(owner, group);
        Directory.CreateDirectory(parent, (UnixFileMode)0b111_101_101);

        var temporary = Posix.CreateTemporaryDirectory(Path.Combine(parent, $".{name}.vbtmp-"));
        string? aside = null;
        try
        {
            foreach (var sub in directories)
            {
                Directory.CreateDirectory(Path.Combine(temporary, sub), HostPaths.PrivateDirectory);
            }

            foreach (var file in ordered)
            {
                await WritePrivateFileAsync(Path.Combine(temporary, file.RelativePath), file.Content, cancellationToken);
            }

            // Owner first (chown clears set-id bits), then modes; directories deepest first, the root last.
            foreach (var file in ordered)
            {
                var path = Path.Combine(temporary, file.RelativePath);
                Posix.ChangeOwner(path, userId, groupId);
                File.SetUnixFileMode(path, fileMode);
            }

            foreach (var sub in directories.Reverse())
            {
                var path = Path.Combine(temporary, sub);
                Posix.ChangeOwner(path, userId, groupId);
                File.SetUnixFileMode(path, directoryMode);
            }

            Posix.ChangeOwner(temporary, userId, groupId);
            File.SetUnixFileMode(temporary, directoryMode);

            if (Exists(directory))
            {
                aside = Posix.CreateTemporaryDirectory(Path.Combine(parent, $".{name}.vbold-"));
                Posix.Rename(directory, Path.Combine(aside, name));
                try
                {
                    Posix.Rename(temporary, directory);
                }
                catch
                {
                    Posix.Rename(Path.Combine(aside, name), directory);
                    throw;
                }
            }
            else
            {
                Posix.Rename(temporary, directory);
            }
        }
        finally
        {
            DeleteIfPresent(temporary);
            if (aside is not null)
            {
                DeleteIfPresent(aside);
            }
        }
    }

    private Task<bool> ExistsCoreAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult(Exists(HostPaths.Absolute(path, nameof(path))));

    private Task DeleteTreeCoreAsync(string path, CancellationToken cancellationToken)
    {
        DeleteIfPresent(HostPaths.Absolute(path, nameof(path)));
        return Task.CompletedTask;
    }

    /// <summary>The ids of <paramref name="owner"/> and <paramref name="group"/> (names or numbers) for chown; null: unchanged.</summary>
    private static (uint User, uint Group) Ids(string? owner, string? group) =>
        (owner is null ? Posix.NoChange : Posix.UserId(HostPaths.Account(owner, nameof(owner))),
         group is null ? Posix.NoChange : Posix.GroupId(HostPaths.Account(group, nameof(group))));

    /// <summary>Anything at <paramref name="path"/>, a dangling symlink included (lstat semantics).</summary>
    private static bool Exists(string path) =>
        File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static void DeleteIfPresent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || File.Exists(path))
        {
            info.Delete(); // the link itself, never what it points to
        }
        else if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true); // does not follow symlinks inside
        }
    }

    /// <summary>Creates <paramref name="path"/> (new, mode 0600 before the umask) and writes it to disk.</summary>
    private static async Task WritePrivateFileAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = HostPaths.PrivateFile,
        };
        await using var stream = new FileStream(path, options);
        await stream.WriteAsync(content, cancellationToken);
        stream.Flush(flushToDisk: true);
    }
}
