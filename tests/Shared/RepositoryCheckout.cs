namespace VirtBackup.Testing;

/// <summary>The checkout the tests run from: the directory above the test binaries that holds VirtBackup.Plugin.sln.</summary>
public static class RepositoryCheckout
{
    private static string? _root;

    /// <summary>The checkout's root directory (docs, scripts and sources are read from there).</summary>
    public static string Root => _root ??= Find();

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "VirtBackup.Plugin.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no VirtBackup.Plugin.sln above {AppContext.BaseDirectory}: run the tests from the repository checkout");
    }
}
