using System.Text.RegularExpressions;

namespace VirtBackup.Tests.Architecture;

/// <summary>
/// The layers of VirtBackup.Core's folders, lowest first (docs/ARCHITECTURE.md draws the same table), and a scan of
/// the sources for the references between folders: <c>using VirtBackup.Core.X</c> directives (aliases and
/// <c>using static</c> included), fully-qualified <c>VirtBackup.Core.X.</c> names, and names qualified from a
/// sibling namespace (<c>Backup.JobRuntimeDirectory</c>, counted when that folder declares the type). Comments and
/// string literals (shell scripts, messages) are no references. Files directly in Core (the root exception types)
/// are below every folder.
/// </summary>
internal static partial class CoreFolders
{
    public const string Root = "(root)";

    /// <summary>Each folder's level: a file may use its own folder and folders of a lower level, never a higher one.
    /// Folders of one level may use each other only without a cycle.</summary>
    public static readonly IReadOnlyList<IReadOnlyList<string>> Layers =
    [
        [Root],
        ["Platform", "Config", "Libvirt", "Nbd", "Stream"],
        ["Hosts"],
        ["Chain", "Capture"],
        ["Backup", "Restore", "Recovery", "Consolidate"],
    ];

    public static string CoreDirectory { get; } = Path.Combine(RepositoryCheckout.Root, "src", "VirtBackup.Core");

    public static string RepositoryRoot => RepositoryCheckout.Root;

    public static int? LevelOf(string folder)
    {
        for (var level = 0; level < Layers.Count; level++)
        {
            if (Layers[level].Contains(folder))
            {
                return level;
            }
        }

        return null;
    }

    /// <summary>Every C# source of Core, with its folder (relative path with '/').</summary>
    public static IReadOnlyList<(string Folder, string RelativePath)> Sources() =>
        [.. Directory.EnumerateFiles(CoreDirectory, "*.cs", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(CoreDirectory, path).Replace('\\', '/'))
            .Where(relative => !relative.StartsWith("bin/", StringComparison.Ordinal) && !relative.StartsWith("obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(relative => (FolderOf(relative), relative))];

    public static string FolderOf(string relativePath) =>
        relativePath.IndexOf('/') is var slash and > 0 ? relativePath[..slash] : Root;

    /// <summary>The type names each folder declares (for sibling-qualified names).</summary>
    public static IReadOnlyDictionary<string, HashSet<string>> DeclaredTypes(IEnumerable<(string Folder, string RelativePath)> sources)
    {
        var types = new Dictionary<string, HashSet<string>>();
        foreach (var (folder, relative) in sources)
        {
            var set = types.TryGetValue(folder, out var known) ? known : types[folder] = [];
            foreach (Match m in Declaration().Matches(WithoutCommentsAndStrings(File.ReadAllText(Path.Combine(CoreDirectory, relative)))))
            {
                set.Add(m.Groups["name"].Value);
            }
        }

        return types;
    }

    /// <summary>The other folders <paramref name="source"/> (in <paramref name="folder"/>) references, each with the text that does.</summary>
    public static IReadOnlyList<(string Folder, string Reference)> References(
        string folder, string source, IReadOnlyDictionary<string, HashSet<string>> declaredTypes)
    {
        var code = WithoutCommentsAndStrings(source);
        var found = new List<(string, string)>();
        foreach (Match m in Qualified().Matches(code))
        {
            var target = m.Groups["folder"].Value;
            if (target != folder && declaredTypes.ContainsKey(target))
            {
                found.Add((target, m.Value));
            }
        }

        foreach (Match m in SiblingQualified().Matches(code))
        {
            var target = m.Groups["folder"].Value;
            if (target != folder && declaredTypes.TryGetValue(target, out var types) && types.Contains(m.Groups["type"].Value))
            {
                found.Add((target, m.Value));
            }
        }

        return [.. found.Distinct()];
    }

    /// <summary>The source with comments, string and character literals (raw, verbatim, interpolated) blanked out,
    /// scanned left to right so that a "//" in a string or a quote in a comment is no confusion.</summary>
    public static string WithoutCommentsAndStrings(string source) =>
        CommentOrLiteral().Replace(source, m => m.Value.StartsWith('/') ? (m.Value.StartsWith("/*", StringComparison.Ordinal) ? " " : string.Empty) : "\"\"");

    [GeneratedRegex(@"\b(?:class|record|interface|enum|struct)\s+(?<name>[A-Z]\w*)|\bdelegate\s+[\w<>?,\s\[\]]+?\s(?<name>[A-Z]\w*)\s*[<(]")]
    private static partial Regex Declaration();

    [GeneratedRegex(@"\bVirtBackup\.Core\.(?<folder>\w+)")]
    private static partial Regex Qualified();

    [GeneratedRegex(@"(?<![\w.])(?<folder>[A-Z]\w*)\.(?<type>[A-Z]\w*)")]
    private static partial Regex SiblingQualified();

    [GeneratedRegex("\\$*\"\"\"[\\s\\S]*?\"\"\"|/\\*[\\s\\S]*?\\*/|//[^\\n]*|(?:\\$@|@\\$|@)\"(?:\"\"|[^\"])*\"|\\$?\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])'")]
    private static partial Regex CommentOrLiteral();
}
