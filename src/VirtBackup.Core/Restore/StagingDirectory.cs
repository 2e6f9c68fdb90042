using VirtBackup.Core.Hosts;

namespace VirtBackup.Core.Restore;

/// <summary>
/// A private directory (0700, the writing user's) next to the restore's targets on the restored host, on the same
/// file system so that finished files can be renamed into place. Its name starts with <see cref="Prefix"/>, so a
/// leftover of a killed run is never mistaken for a restored file; disposing removes it with everything still inside.
/// </summary>
public sealed class StagingDirectory : IAsyncDisposable
{
    public const string Prefix = ".virtbackup-restore-";

    internal const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly IHostFiles _files;

    private StagingDirectory(string path, IHostFiles files)
    {
        Path = path;
        _files = files;
    }

    public string Path { get; }

    /// <summary>Creates the staging directory in <paramref name="parent"/> (which must exist) through <paramref name="files"/>.</summary>
    public static async Task<StagingDirectory> CreateAsync(IHostFiles files, string parent, CancellationToken cancellationToken)
    {
        try
        {
            return new StagingDirectory(await files.CreatePrivateDirectoryAsync(parent, Prefix, cancellationToken), files);
        }
        catch (HostException e)
        {
            throw new RestoreWriteException($"cannot create a staging directory in '{parent}': {e.Message}", e);
        }
    }

    /// <summary>A path inside the staging directory; <paramref name="relative"/> is made of checked segments.</summary>
    public string Combine(string relative)
    {
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(Path, relative));
        return RestoreLayout.IsInside(Path, path) && path != Path
            ? path
            : throw new ArgumentException($"'{relative}' leaves the staging directory", nameof(relative));
    }

    public async ValueTask DisposeAsync() => await _files.DeleteTreeAsync(Path, CancellationToken.None);
}
