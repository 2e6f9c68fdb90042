namespace VirtBackup.Core.Hosts;

/// <summary>Who owns an existing directory on the host and its permission bits (symlinks followed).</summary>
/// <param name="Permissions">The low twelve mode bits (rwx for owner, group and other; setuid, setgid, sticky).</param>
public sealed record HostPathOwnership(string Path, int Uid, int Gid, UnixFileMode Permissions)
{
    /// <summary>"/", then every directory down to <paramref name="path"/> (absolute and normalized), outermost first.</summary>
    public static IReadOnlyList<string> Ancestors(string path)
    {
        HostPaths.Absolute(path, nameof(path));
        var result = new List<string> { "/" };
        var current = string.Empty;
        foreach (var segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current += "/" + segment;
            result.Add(current);
        }

        return result;
    }
}
