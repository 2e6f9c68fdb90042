namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>POSIX shell quoting for words that travel to a remote shell.</summary>
public static class ShellQuote
{
    /// <summary>
    /// <paramref name="value"/> as one single-quoted shell word: every character stands for itself
    /// (a <c>'</c> becomes <c>'\''</c>), so no file name can inject a command. NUL cannot be passed.
    /// </summary>
    public static string Quote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Contains('\0'))
        {
            throw new ArgumentException("a shell word cannot contain a NUL character", nameof(value));
        }

        return "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    /// <summary>
    /// A remote command line that runs <paramref name="script"/> with <c>/bin/sh</c> (whatever the remote
    /// user's login shell), its positional parameters <c>$1</c>.. being <paramref name="arguments"/>.
    /// </summary>
    public static string ShScript(string script, params IReadOnlyList<string> arguments)
    {
        var words = new List<string>(arguments.Count + 4) { "sh", "-c", Quote(script), "virtbackup" };
        words.AddRange(arguments.Select(Quote));
        return string.Join(' ', words);
    }
}
