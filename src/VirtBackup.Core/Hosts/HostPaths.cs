using System.Globalization;
using System.Text.RegularExpressions;

namespace VirtBackup.Core.Hosts;

/// <summary>Checks of what the write side is given, shared by the local and the remote host files.</summary>
internal static partial class HostPaths
{
    public const UnixFileMode PermissionBits = (UnixFileMode)0xFFF;
    public const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Splits an absolute, normalized path (no '.', '..', empty segments, trailing '/', NUL or
    /// line break; not '/') into its parent directory and its name.</summary>
    public static (string Parent, string Name) Split(string path, string paramName)
    {
        ArgumentNullException.ThrowIfNull(path, paramName);
        if (!path.StartsWith('/') || path == "/" || path.EndsWith('/') || path.Any(c => c is '\0' or '\n' or '\r'))
        {
            throw new ArgumentException($"'{path}' is not an absolute path of a file or directory below '/'", paramName);
        }

        var segments = path[1..].Split('/');
        if (segments.Any(s => s is "" or "." or ".."))
        {
            throw new ArgumentException($"'{path}' is not a normalized path (no '.', '..' or '//')", paramName);
        }

        var slash = path.LastIndexOf('/');
        return (slash == 0 ? "/" : path[..slash], path[(slash + 1)..]);
    }

    /// <summary>Checks an absolute path as <see cref="Split"/> does.</summary>
    public static string Absolute(string path, string paramName)
    {
        Split(path, paramName);
        return path;
    }

    /// <summary>The directories (parents first) and files of a tree to write, each file once; relative
    /// paths with '/' that cannot leave the tree.</summary>
    public static (IReadOnlyList<string> Directories, IReadOnlyList<HostFile> Files) Layout(IReadOnlyList<HostFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var directories = new SortedSet<string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var relative = file.RelativePath;
            var segments = relative.Split('/');
            if (relative.Contains('\0') || segments.Any(s => s is "" or "." or ".."))
            {
                throw new ArgumentException($"'{relative}' is not a relative path inside the tree", nameof(files));
            }

            if (!names.Add(relative))
            {
                throw new ArgumentException($"'{relative}' is given twice", nameof(files));
            }

            for (var i = 1; i < segments.Length; i++)
            {
                directories.Add(string.Join('/', segments[..i]));
            }
        }

        foreach (var directory in directories)
        {
            if (names.Contains(directory))
            {
                throw new ArgumentException($"'{directory}' is given as a file and is a directory of another file", nameof(files));
            }
        }

        return ([.. directories], [.. files.OrderBy(f => f.RelativePath, StringComparer.Ordinal)]);
    }

    /// <summary>A user or group as chown takes it: a name (letters, digits, '.', '_', '-', not first; a
    /// trailing '$') or a number.</summary>
    public static string Account(string account, string paramName)
    {
        ArgumentNullException.ThrowIfNull(account, paramName);
        return AccountPattern().IsMatch(account)
            ? account
            : throw new ArgumentException($"'{account}' is not a user or group name", paramName);
    }

    /// <summary>Permission bits as chmod's octal argument, e.g. "0600".</summary>
    public static string Octal(UnixFileMode mode, string paramName) =>
        (mode & ~PermissionBits) == 0
            ? Convert.ToString((int)mode, 8).PadLeft(4, '0')
            : throw new ArgumentException($"{(int)mode} is not a set of permission bits", paramName);

    public static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');

    public static string Decimal(long value) => value.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^([A-Za-z0-9_][A-Za-z0-9._-]*\$?|[0-9]+)$")]
    private static partial Regex AccountPattern();
}
