namespace VirtBackup.Core.Capture;

/// <summary><see cref="IHostFiles"/> on this machine.</summary>
public sealed class LocalHostFiles : IHostFiles
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

    public Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken) =>
        File.ReadAllBytesAsync(path, cancellationToken);

    public async Task<IReadOnlyList<HostFile>> ReadTreeAsync(string directory, CancellationToken cancellationToken)
    {
        var files = new List<HostFile>();
        foreach (var path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(directory, path).Replace(Path.DirectorySeparatorChar, '/');
            files.Add(new HostFile(relative, await File.ReadAllBytesAsync(path, cancellationToken), File.GetUnixFileMode(path)));
        }

        return files;
    }
}
