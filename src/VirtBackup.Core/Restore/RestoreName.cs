namespace VirtBackup.Core.Restore;

/// <summary>
/// A domain name becomes part of file names (<c>NAME-vda.qcow2</c>, <c>NAME_VARS.fd</c>, <c>NAME.chain.json</c>),
/// so only names that are safe as one path segment are restored under their own name: ASCII letters, digits,
/// <c>. _ + -</c>, starting with a letter, digit or <c>_</c>, at most 200 characters. The name in a stream is
/// never trusted; other names need <c>--as</c>.
/// </summary>
public static class RestoreName
{
    public const int MaxLength = 200;

    /// <summary>Why <paramref name="name"/> cannot name restored files, or null when it can.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "the name is empty";
        }

        if (name.Length > MaxLength)
        {
            return $"the name is longer than {MaxLength} characters";
        }

        if (!(char.IsAsciiLetterOrDigit(name[0]) || name[0] == '_'))
        {
            return "the name must start with an ASCII letter, digit or '_'";
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '+' or '-'))
            {
                return $"character '{(c is > ' ' and < (char)0x7F ? c.ToString() : $"\\u{(int)c:x4}")}' is not allowed (only A-Z a-z 0-9 . _ + -)";
            }
        }

        return null;
    }
}
