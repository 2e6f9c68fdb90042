namespace VirtBackup.Core.Hosts;

/// <summary>An image served by qemu-nbd, reachable here at <see cref="SocketPath"/> until disposed.</summary>
public interface IServedImage : IAsyncDisposable
{
    /// <summary>A unix socket on this machine (for a remote host: the local end of an SSH forward).</summary>
    string SocketPath { get; }

    /// <summary>
    /// Stops serving once the client has disconnected and returns when everything written is on stable storage;
    /// throws <see cref="HostException"/> when that cannot be said (the image must then not be kept).
    /// </summary>
    Task CloseAsync(CancellationToken cancellationToken);
}

/// <summary>
/// qemu-img and qemu-nbd on the hypervisor host, where the images are: run here for this machine, over SSH
/// for a remote one. Paths are the host's. New images are never readable by anyone but their owner (0600).
/// </summary>
public interface IHostImages
{
    /// <summary>Creates a new image of <paramref name="format"/> (qcow2 or raw, thin) and <paramref name="virtualSize"/> bytes.</summary>
    Task CreateAsync(string path, string format, long virtualSize, CancellationToken cancellationToken);

    /// <summary>Creates a qcow2 overlay on <paramref name="backingPath"/>, for <see cref="CommitAsync"/> later.</summary>
    Task CreateOverlayAsync(string path, string backingPath, string backingFormat, CancellationToken cancellationToken);

    /// <summary>Writes everything the qcow2 overlay at <paramref name="overlayPath"/> holds into its backing image.</summary>
    Task CommitAsync(string overlayPath, CancellationToken cancellationToken);

    Task<ImageInfo> InfoAsync(string path, bool forceShare, CancellationToken cancellationToken);

    /// <summary>Adds a persistent, enabled dirty bitmap <paramref name="name"/> to the qcow2 image (no QEMU may hold it).</summary>
    Task AddBitmapAsync(string path, string name, CancellationToken cancellationToken);

    /// <summary>Removes the persistent dirty bitmap <paramref name="name"/> from the qcow2 image (no QEMU may hold it).</summary>
    Task RemoveBitmapAsync(string path, string name, CancellationToken cancellationToken);

    /// <summary>
    /// Creates empty qcow2 images of the given virtual sizes (a backup job's scratch images), 0600 and, with
    /// <paramref name="owner"/>, owned by that uid and gid: all of them in one go (one remote command on a remote host).
    /// An existing file at a path is replaced.
    /// </summary>
    Task CreateScratchAsync(IReadOnlyList<(string Path, long VirtualSize)> images, (int Uid, int Gid)? owner, CancellationToken cancellationToken);

    /// <summary>Removes the files at <paramref name="paths"/> (one remote command on a remote host); a missing one is no error.</summary>
    Task RemoveFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken);

    /// <summary>
    /// Serves the image with qemu-nbd (writable unless <paramref name="readOnly"/>) on a private socket; with
    /// <paramref name="bitmap"/>, also that persistent bitmap as the meta context <c>qemu:dirty-bitmap:NAME</c>.
    /// </summary>
    Task<IServedImage> ServeAsync(string path, string format, bool readOnly, string? bitmap, CancellationToken cancellationToken);
}
