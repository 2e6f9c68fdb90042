namespace VirtBackup.Core.Capture;

/// <summary>One file of a state tree (NVRAM or swtpm state), read into memory.</summary>
/// <param name="RelativePath">Path below the tree's root, with '/' separators.</param>
public sealed record HostFile(string RelativePath, byte[] Content, UnixFileMode Mode);

/// <summary>
/// The hypervisor host's file system as the capture and the restore see it: local here, over SSH for
/// a remote libvirt. Only what the state capture and restore need; disk data never passes through it.
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
    /// Puts <paramref name="content"/> at <paramref name="path"/> (an absolute path whose directory
    /// exists), replacing a file there, owned by <paramref name="owner"/>:<paramref name="group"/> (names
    /// or numeric ids) with <paramref name="mode"/>. The content is never readable by anyone else at any
    /// moment: it is written to a new 0600 file next to the target, flushed to disk, given its owner and
    /// mode, then renamed over the target.
    /// </summary>
    Task WriteFileAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, string owner, string group, CancellationToken cancellationToken);

    /// <summary>
    /// Makes <paramref name="directory"/> (absolute) hold exactly <paramref name="files"/> (their
    /// <see cref="HostFile.Mode"/> is ignored): every file gets <paramref name="fileMode"/>, the directory
    /// and every sub-directory <paramref name="directoryMode"/>, all owned by
    /// <paramref name="owner"/>:<paramref name="group"/>. The tree is built in a 0700 temporary
    /// directory next to the target and renamed into place; an existing target is moved aside and
    /// removed afterwards. Missing parent directories are created (0755, root's ownership).
    /// </summary>
    Task WriteTreeAsync(
        string directory,
        IReadOnlyList<HostFile> files,
        UnixFileMode fileMode,
        UnixFileMode directoryMode,
        string owner,
        string group,
        CancellationToken cancellationToken);

    /// <summary>Whether anything (file, directory, even a dangling symlink) is at <paramref name="path"/>.</summary>
    Task<bool> ExistsAsync(string path, CancellationToken cancellationToken);

    /// <summary>Removes the file or the directory tree at <paramref name="path"/> (a symlink itself, never
    /// its target); nothing there is fine.</summary>
    Task DeleteTreeAsync(string path, CancellationToken cancellationToken);
}
