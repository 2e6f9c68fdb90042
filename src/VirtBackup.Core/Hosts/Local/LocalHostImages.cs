namespace VirtBackup.Core.Hosts.Local;

/// <summary><see cref="IHostImages"/> on this machine. Fails with <see cref="HostException"/> (a tool's failure: its
/// <see cref="ToolException"/>).</summary>
public sealed class LocalHostImages : IHostImages
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public Task CreateAsync(string path, string format, long virtualSize, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"create the image '{path}'", async () =>
        {
            await QemuImg.CreateAsync(path, format, virtualSize, cancellationToken);
            File.SetUnixFileMode(path, Private);
        });

    public Task CreateOverlayAsync(string path, string backingPath, string backingFormat, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"create the overlay '{path}'", async () =>
        {
            await QemuImg.CreateOverlayAsync(path, backingPath, backingFormat, cancellationToken);
            File.SetUnixFileMode(path, Private);
        });

    public Task CommitAsync(string overlayPath, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"commit '{overlayPath}'", () => QemuImg.CommitAsync(overlayPath, cancellationToken));

    public Task<ImageInfo> InfoAsync(string path, bool forceShare, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"read the image '{path}'", () => QemuImg.InfoAsync(path, forceShare, cancellationToken));

    public Task AddBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"add the bitmap {name} to '{path}'", () => QemuImg.AddBitmapAsync(path, name, cancellationToken));

    public Task RemoveBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost($"remove the bitmap {name} from '{path}'", () => QemuImg.RemoveBitmapAsync(path, name, cancellationToken));

    public Task CreateScratchAsync(IReadOnlyList<(string Path, long VirtualSize)> images, (int Uid, int Gid)? owner, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost("create the scratch images", async () =>
        {
            foreach (var (path, virtualSize) in images)
            {
                await CreateAsync(path, "qcow2", virtualSize, cancellationToken);
                if (owner is { } ids)
                {
                    Platform.Posix.Chown(path, ids.Uid, ids.Gid);
                }
            }
        });

    public Task RemoveFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost("remove files", () =>
        {
            foreach (var path in paths)
            {
                File.Delete(path); // no error when it is not there
            }

            return Task.CompletedTask;
        });

    public Task<IServedImage> ServeAsync(string path, string format, bool readOnly, string? bitmap, CancellationToken cancellationToken) =>
        LocalHostFiles.OnThisHost<IServedImage>(
            $"serve '{path}' with qemu-nbd", async () => await QemuNbdServer.StartAsync(path, format, readOnly, bitmap, cancellationToken));
}
