using System.Security.Cryptography;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;

namespace VirtBackup.Core.Restore;

/// <summary>
/// A private directory (0700, this process's owner) next to the restore's targets, on the same file system so
/// that finished files can be renamed into place. Its name starts with <see cref="Prefix"/>, so a leftover of a
/// killed run is never mistaken for a restored file; disposing removes it with everything still inside.
/// One made with <see cref="CreateAsync"/> lives on the restored host (maybe a remote one) and goes with <see cref="DisposeAsync"/>.
/// </summary>
public sealed class StagingDirectory : IDisposable, IAsyncDisposable
{
    public const string Prefix = ".virtbackup-restore-";

    internal const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly IHostFiles? files;

    private StagingDirectory(string path, IHostFiles? files = null)
    {
        Path = path;
        this.files = files;
    }

    public string Path { get; }

    /// <summary>Creates the staging directory in <paramref name="parent"/> (which must exist).</summary>
    public static StagingDirectory Create(string parent)
    {
        var path = System.IO.Path.Combine(parent, Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
        try
        {
            // CreateDirectory succeeds on an existing directory: the random name makes that practically impossible.
            Directory.CreateDirectory(path, Private);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RestoreWriteException($"cannot create a staging directory in '{parent}': {e.Message}", e);
        }

        return new StagingDirectory(path);
    }

    /// <summary>Creates the staging directory in <paramref name="parent"/> (which must exist) through <paramref name="files"/>.</summary>
    public static async Task<StagingDirectory> CreateAsync(IHostFiles files, string parent, CancellationToken cancellationToken)
    {
        try
        {
            return new StagingDirectory(await files.CreatePrivateDirectoryAsync(parent, Prefix, cancellationToken), files);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
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

    public async ValueTask DisposeAsync()
    {
        if (files is null)
        {
            Dispose();
            return;
        }

        await files.DeleteTreeAsync(Path, CancellationToken.None);
    }

    public void Dispose()
    {
        if (files is not null)
        {
            throw new InvalidOperationException("a staging directory made through host files is removed with DisposeAsync");
        }

        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Already gone: nothing to clean.
        }
    }
}
