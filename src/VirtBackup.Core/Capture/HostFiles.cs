namespace VirtBackup.Core.Capture;

/// <summary>One file of a state tree (NVRAM or swtpm state), read into memory.</summary>
/// <param name="RelativePath">Path below the tree's root, with '/' separators.</param>
public sealed record HostFile(string RelativePath, byte[] Content, UnixFileMode Mode);

/// <summary>
/// The hypervisor host's file system as the capture and the restore see it: local here, over SSH for
/// a remote libvirt. Only what the state capture needs; disk data never passes through it.
/// </summary>
public interface IHostFiles
{
    /// <summary>Throws <see cref="PreflightException"/> when the file or every file below the
    /// directory cannot be read by this process; reads no content.</summary>
    Task CheckReadableAsync(string path, string whatItIs, string advice, CancellationToken cancellationToken);

    Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken);

    /// <summary>Every regular file below <paramref name="directory"/>, ordered by relative path.</summary>
    Task<IReadOnlyList<HostFile>> ReadTreeAsync(string directory, CancellationToken cancellationToken);
}
