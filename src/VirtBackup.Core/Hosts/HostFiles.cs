namespace VirtBackup.Core.Hosts;

/// <summary>One file of a state tree (NVRAM or swtpm state), read into memory.</summary>
/// <param name="RelativePath">Path below the tree's root, with '/' separators.</param>
public sealed record HostFile(string RelativePath, byte[] Content, UnixFileMode Mode);

/// <summary>What is at a path: a directory, or a file with its size; the modification time in
/// <see cref="DateTime.Ticks"/> (UTC, truncated to 100 ns), as <see cref="File.GetLastWriteTimeUtc"/> gives it.</summary>
public sealed record HostFileStatus(bool IsDirectory, long Size, long ModifiedUtcTicks);

/// <summary>
/// A read of the state files (a file and a directory tree, as a domain's NVRAM and swtpm state) prepared
/// ahead of time, to be done once as fast as the host allows: the capture prepares it before the pause
/// and reads inside it. Disposing an unread one cancels it.
/// </summary>
public interface IPreparedStateRead : IAsyncDisposable
{
    /// <summary>The file's bytes (null when none was asked for) and every regular file below the
    /// directory, ordered by relative path (empty when none was asked for).</summary>
    Task<(byte[]? File, IReadOnlyList<HostFile> Tree)> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The hypervisor host's file system as the capture and the restore see it: local here, over SSH for
/// a remote libvirt. Only what the state capture and restore need; disk data never passes through it.
/// Paths are absolute and normalized (no '.', '..' or '//').
/// </summary>
public interface IHostFiles
{
    /// <summary>Throws <see cref="PreflightException"/> when the file or every file below the
    /// directory cannot be read by this process; reads no content.</summary>
    Task CheckReadableAsync(string path, string whatItIs, string advice, CancellationToken cancellationToken);

    Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken);

    /// <summary>Every regular file below <paramref name="directory"/>, ordered by relative path.</summary>
    Task<IReadOnlyList<HostFile>> ReadTreeAsync(string directory, CancellationToken cancellationToken);

    /// <summary>
    /// Prepares one read of <paramref name="file"/> and of the tree below <paramref name="directory"/>
    /// (either may be null): what can be done ahead (a remote command started and waiting) is done here,
    /// so that <see cref="IPreparedStateRead.ReadAsync"/> costs as little as possible.
    /// </summary>
    Task<IPreparedStateRead> PrepareStateReadAsync(string? file, string? directory, CancellationToken cancellationToken);

    /// <summary>What is at <paramref name="path"/> (symlinks followed), or null when nothing is.</summary>
    Task<HostFileStatus?> StatAsync(string path, CancellationToken cancellationToken);

    /// <summary>Owner, group and permission bits of "/" and of every directory below it down to <paramref name="path"/>,
    /// outermost first, as far as they exist (symlinks followed): who can traverse to <paramref name="path"/>.</summary>
    Task<IReadOnlyList<HostPathOwnership>> StatAncestorsAsync(string path, CancellationToken cancellationToken);

    /// <summary>
    /// Puts <paramref name="content"/> at <paramref name="path"/> (an absolute path whose directory
    /// exists), replacing a file there, owned by <paramref name="owner"/>:<paramref name="group"/> (names
    /// or numeric ids; null: the writing user's, unchanged) with <paramref name="mode"/>. The content is never readable by anyone else at any
    /// moment: it is written to a new 0600 file next to the target, flushed to disk, given its owner and
    /// mode, then renamed over the target.
    /// </summary>
    Task WriteFileAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, string? owner, string? group, CancellationToken cancellationToken);

    /// <summary>
    /// Makes <paramref name="directory"/> (absolute) hold exactly <paramref name="files"/> (their
    /// <see cref="HostFile.Mode"/> is ignored): every file gets <paramref name="fileMode"/>, the directory
    /// and every sub-directory <paramref name="directoryMode"/>, all owned by
    /// <paramref name="owner"/>:<paramref name="group"/> (names or numeric ids; null: the writing user's). The tree is built in a 0700 temporary
    /// directory next to the target and renamed into place; an existing target is moved aside and
    /// removed afterwards. Missing parent directories are created (0755, root's ownership).
    /// </summary>
    Task WriteTreeAsync(
        string directory, IReadOnlyList<HostFile> files, UnixFileMode fileMode, UnixFileMode directoryMode, string? owner, string? group, CancellationToken cancellationToken);

    /// <summary>Whether anything (file, directory, even a dangling symlink) is at <paramref name="path"/>.</summary>
    Task<bool> ExistsAsync(string path, CancellationToken cancellationToken);

    /// <summary>Removes the file or the directory tree at <paramref name="path"/> (a symlink itself, never
    /// its target); nothing there is fine.</summary>
    Task DeleteTreeAsync(string path, CancellationToken cancellationToken);

    /// <summary>Creates the directory <paramref name="path"/> and its missing parents, each with
    /// <paramref name="mode"/> (owned by the writing user); an existing directory is left as it is.</summary>
    Task CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken);

    /// <summary>Creates a new, empty 0700 directory in <paramref name="parent"/> whose name is
    /// <paramref name="prefix"/> and random characters; returns its path.</summary>
    Task<string> CreatePrivateDirectoryAsync(string parent, string prefix, CancellationToken cancellationToken);

    /// <summary>Renames <paramref name="source"/> to <paramref name="destination"/> (same file system),
    /// atomically replacing a file there.</summary>
    Task MoveAsync(string source, string destination, CancellationToken cancellationToken);

    /// <summary>Flushes the directory <paramref name="path"/> (its entries: renames, creations) to stable storage.</summary>
    Task SyncAsync(string path, CancellationToken cancellationToken);
}
