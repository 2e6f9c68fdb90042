using Serilog;
using VirtBackup.Core.Hosts.Local;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// <see cref="IHostImages"/> on a remote hypervisor: qemu-img runs there as one remote command (under umask
/// 077, so new images are 0600), and qemu-nbd runs there for as long as a <see cref="RemoteProcess"/> keeps
/// its channel open, its unix socket forwarded here over the same SSH connection. The disk data travels
/// through that forward; nothing is copied through temporary files.
/// </summary>
public sealed class SshHostImages(SshSession session, ILogger? log = null) : IHostImages
{
    /// <summary>$@ = qemu-img arguments.</summary>
    private static readonly string QemuImgScript = RemoteScripts.Load("qemu-img.sh");

    /// <summary>
    /// $@ = qemu-nbd arguments but the socket. Starts qemu-nbd with --fork on a socket in a new private directory
    /// (the parent exits once the server listens), prints the socket's path, then waits for the end of its input
    /// (our side closing the channel, or the connection dying) to stop qemu-nbd and remove the directory. qemu-nbd
    /// forgets a SIGTERM that arrives while it is still starting up, so it is sent again each second, and the
    /// server is killed after 10 s.
    /// </summary>
    private static readonly string QemuNbdScript = RemoteScripts.Load("qemu-nbd.sh");

    /// <summary>$1 = "uid:gid" or "", then pairs of path and virtual size in bytes: empty qcow2 images, 0600, chowned.</summary>
    private static readonly string ScratchScript = RemoteScripts.Load("scratch.sh");

    /// <summary>$@ = paths.</summary>
    private static readonly string RemoveScript = RemoteScripts.Load("remove.sh");

    private readonly ILogger _log = log ?? Serilog.Core.Logger.None;

    public async Task CreateScratchAsync(IReadOnlyList<(string Path, long VirtualSize)> images, (int Uid, int Gid)? owner, CancellationToken cancellationToken)
    {
        var arguments = new List<string> { owner is { } ids ? $"{ids.Uid}:{ids.Gid}" : "" };
        foreach (var (path, virtualSize) in images)
        {
            arguments.Add(path);
            arguments.Add(virtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        try
        {
            await session.RunAsync(ShellQuote.ShScript(ScratchScript, arguments), null, "create the scratch images", cancellationToken);
        }
        catch (RemoteException e) when (e.ExitCode is not (null or 255))
        {
            throw new ToolException($"the scratch images could not be made on {session.Display} (exit {e.ExitCode}): {e.StandardError}", e);
        }
    }

    public async Task RemoveFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count > 0)
        {
            await session.RunAsync(ShellQuote.ShScript(RemoveScript, paths), null, "remove the scratch images", cancellationToken);
        }
    }

    public Task CreateAsync(string path, string format, long virtualSize, CancellationToken cancellationToken) =>
        RunAsync(QemuImg.CreateArguments(path, format, virtualSize), $"create the image '{path}'", cancellationToken);

    public Task CreateOverlayAsync(string path, string backingPath, string backingFormat, CancellationToken cancellationToken) =>
        RunAsync(QemuImg.OverlayArguments(path, backingPath, backingFormat), $"create the overlay '{path}'", cancellationToken);

    public Task CommitAsync(string overlayPath, CancellationToken cancellationToken) =>
        RunAsync(QemuImg.CommitArguments(overlayPath), $"commit the overlay '{overlayPath}'", cancellationToken);

    public async Task<ImageInfo> InfoAsync(string path, bool forceShare, CancellationToken cancellationToken)
    {
        var json = await RunAsync(QemuImg.InfoArguments(path, forceShare), $"read the image info of '{path}'", cancellationToken);
        return QemuImg.ParseInfo(System.Text.Encoding.UTF8.GetString(json));
    }

    public Task AddBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        RunAsync(QemuImg.AddBitmapArguments(path, name), $"add bitmap '{name}' to '{path}'", cancellationToken);

    public Task RemoveBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        RunAsync(QemuImg.RemoveBitmapArguments(path, name), $"remove bitmap '{name}' from '{path}'", cancellationToken);

    public async Task<IServedImage> ServeAsync(string path, string format, bool readOnly, string? bitmap, CancellationToken cancellationToken)
    {
        var operation = $"serve '{path}' with qemu-nbd";
        RemoteProcess process;
        try
        {
            process = await RemoteProcess.StartAsync(
                session,
                ShellQuote.ShScript(QemuNbdScript, QemuNbdServer.Arguments(path, format, readOnly, bitmap)),
                operation,
                cancellationToken);
        }
        catch (RemoteException e)
        {
            throw new ToolException($"qemu-nbd could not serve '{path}' on {session.Display}: {e.StandardError}", e);
        }

        try
        {
            var remoteSocket = process.ReadyLine;
            var local = await session.ForwardUnixSocketAsync(remoteSocket, cancellationToken);
            _log.Information("qemu-nbd serves {Image} on {Host}: its socket {Remote} is forwarded over SSH to {Local}",
                path, session.Display, remoteSocket, local);
            return new ServedImage(session, process, local);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    private async Task<byte[]> RunAsync(IReadOnlyList<string> arguments, string operation, CancellationToken cancellationToken)
    {
        try
        {
            return await session.RunAsync(ShellQuote.ShScript(QemuImgScript, arguments), null, operation, cancellationToken);
        }
        catch (RemoteException e) when (e.ExitCode is not (null or 255))
        {
            throw new ToolException($"qemu-img {string.Join(' ', arguments)} failed on {session.Display} (exit {e.ExitCode}): {e.StandardError}", e);
        }
    }

    /// <summary>Stops the forward, then qemu-nbd (end of its input), and waits until it has closed the image.</summary>
    private sealed class ServedImage(SshSession session, RemoteProcess process, string socketPath) : IServedImage
    {
        public string SocketPath => socketPath;

        /// <summary>The remote qemu-nbd flushes when the client asks (its flushes are not deferred): stopping it is enough.</summary>
        public async Task CloseAsync(CancellationToken cancellationToken) => await DisposeAsync();

        public async ValueTask DisposeAsync()
        {
            try
            {
                await session.CancelForwardAsync(socketPath, CancellationToken.None);
            }
            finally
            {
                await process.DisposeAsync();
            }
        }
    }
}
