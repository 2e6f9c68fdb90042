namespace VirtBackup.Core.Hosts.Local;

/// <summary>
/// The entry points of <see cref="LocalHostFiles"/>: each runs its operation and turns this machine's I/O errors
/// (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>) into the host layer's one failure type,
/// <see cref="HostException"/>, as the SSH implementation does with a remote command's failure.
/// </summary>
public sealed partial class LocalHostFiles
{
    public Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken) =>
        OnThisHost($"read file '{path}'", () => ReadFileCoreAsync(path, cancellationToken));

    public Task<IReadOnlyList<HostFile>> ReadTreeAsync(string directory, CancellationToken cancellationToken) =>
        OnThisHost($"read the files below '{directory}'", () => ReadTreeCoreAsync(directory, cancellationToken));

    public Task WriteFileAsync(
        string path, ReadOnlyMemory<byte> content, UnixFileMode mode, string? owner, string? group, CancellationToken cancellationToken) =>
        OnThisHost($"write file '{path}'", () => WriteFileCoreAsync(path, content, mode, owner, group, cancellationToken));

    public Task WriteTreeAsync(
        string directory, IReadOnlyList<HostFile> files, UnixFileMode fileMode, UnixFileMode directoryMode, string? owner, string? group, CancellationToken cancellationToken) =>
        OnThisHost(
            $"write the files below '{directory}'",
            () => WriteTreeCoreAsync(directory, files, fileMode, directoryMode, owner, group, cancellationToken));

    public Task<bool> ExistsAsync(string path, CancellationToken cancellationToken) =>
        OnThisHost($"look at '{path}'", () => ExistsCoreAsync(path, cancellationToken));

    public Task DeleteTreeAsync(string path, CancellationToken cancellationToken) =>
        OnThisHost($"remove '{path}'", () => DeleteTreeCoreAsync(path, cancellationToken));

    public Task<HostFileStatus?> StatAsync(string path, CancellationToken cancellationToken) =>
        OnThisHost($"look at '{path}'", () => StatCoreAsync(path, cancellationToken));

    public Task CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken) =>
        OnThisHost($"create the directory '{path}'", () => CreateDirectoryCoreAsync(path, mode, cancellationToken));

    public Task<string> CreatePrivateDirectoryAsync(string parent, string prefix, CancellationToken cancellationToken) =>
        OnThisHost($"create a directory in '{parent}'", () => CreatePrivateDirectoryCoreAsync(parent, prefix, cancellationToken));

    public Task MoveAsync(string source, string destination, CancellationToken cancellationToken) =>
        OnThisHost($"rename '{source}' to '{destination}'", () => MoveCoreAsync(source, destination, cancellationToken));

    public Task SyncAsync(string path, CancellationToken cancellationToken) =>
        OnThisHost($"flush the directory '{path}'", () => SyncCoreAsync(path, cancellationToken));

    internal static async Task<T> OnThisHost<T>(string operation, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (HostException.IsLocalIoError(e))
        {
            throw HostException.OnThisHost(operation, e);
        }
    }

    internal static async Task OnThisHost(string operation, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception e) when (HostException.IsLocalIoError(e))
        {
            throw HostException.OnThisHost(operation, e);
        }
    }
}
