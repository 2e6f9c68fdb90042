using System.Globalization;

namespace VirtBackup.Core.Platform;

/// <summary>What /proc says about this process's own descriptors.</summary>
internal static partial class Posix
{
    /// <summary>
    /// Whether <paramref name="fd"/> is one end of a pipe whose other end this process holds too. That is what a
    /// stdin or stdout closed by the shell (<c>virtbackup verify &lt;&amp;-</c>) turns into: the .NET runtime makes a
    /// pipe for itself at start-up and gets the lowest free descriptor, so a read would wait forever on the
    /// runtime's own pipe and a write would go into it. A real stdin or stdout pipe has its other end in another
    /// process; a process substitution (<c>&lt; &lt;(...)</c>) may leave a second descriptor of the same end, which
    /// does not count.
    /// </summary>
    public static bool IsOwnPipe(int fd)
    {
        var target = LinkTarget($"/proc/self/fd/{fd}");
        if (target is null || !target.StartsWith("pipe:", StringComparison.Ordinal) || AccessMode(fd) is not { } mode)
        {
            return false;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var other) && other != fd
                && LinkTarget(entry) == target && AccessMode(other) is { } otherMode && otherMode != mode)
            {
                return true;
            }
        }

        return false;
    }

    private static string? LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>O_RDONLY, O_WRONLY or O_RDWR from the "flags:" line (octal) of /proc/self/fdinfo/FD.</summary>
    private static int? AccessMode(int fd)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{fd}"))
            {
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                {
                    return Convert.ToInt32(line["flags:".Length..].Trim(), 8) & 3;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return null;
    }
}
