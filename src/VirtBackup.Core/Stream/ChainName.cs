using System.Text.RegularExpressions;

namespace VirtBackup.Core.Stream;

/// <summary>
/// The name of one of a domain's independent chains (<c>backup --chain NAME</c>); null is the unnamed chain, the one a
/// backup without <c>--chain</c> continues. A name goes into checkpoint and bitmap names, state file names, restic tags
/// and borg archive names, so it is kept to a charset that is safe in all of them.
/// </summary>
public static partial class ChainName
{
    public const int MaxLength = 32;

    /// <summary>What a valid name looks like, for messages.</summary>
    public const string Rule = "1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit";

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    /// <summary>Why <paramref name="name"/> is not a chain name, or null when it is one.</summary>
    public static string? Problem(string name) =>
        IsValid(name) ? null : $"'{name}' is not a chain name ({Rule})";

    /// <summary>How messages name a chain: "chain 'NAME'", or "the unnamed chain".</summary>
    public static string Describe(string? name) => name is null ? "the unnamed chain" : $"chain '{name}'";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
