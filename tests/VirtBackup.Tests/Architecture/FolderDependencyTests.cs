using System.Text.RegularExpressions;

namespace VirtBackup.Tests.Architecture;

/// <summary>
/// The folders of VirtBackup.Core depend on each other one way only (C# does not enforce it; Go's import rules do
/// it for restic): leaves (Platform, Config, Libvirt, Nbd, Stream), then Hosts, then Chain and Capture, then Backup
/// and Restore. See <see cref="CoreFolders.Layers"/> and docs/ARCHITECTURE.md.
/// </summary>
public sealed class FolderDependencyTests
{
    private static readonly IReadOnlyDictionary<string, HashSet<string>> Types = new Dictionary<string, HashSet<string>>
    {
        ["Hosts"] = ["HostException", "ScratchImages"],
        ["Backup"] = ["BackupRun", "JobEndpoint"],
        ["Capture"] = ["DomainRepair"],
        ["Stream"] = ["BackupStreamWriter"],
    };

    [Fact]
    public void Every_folder_of_Core_has_a_level_in_the_table()
    {
        var unplaced = CoreFolders.Sources().Select(s => s.Folder).Distinct().Where(f => CoreFolders.LevelOf(f) is null).ToList();

        Assert.True(unplaced.Count == 0, $"folders without a level in CoreFolders.Layers (and docs/ARCHITECTURE.md): {string.Join(", ", unplaced)}");
    }

    [Fact]
    public void No_file_of_Core_references_a_folder_of_a_higher_level()
    {
        var sources = CoreFolders.Sources();
        var types = CoreFolders.DeclaredTypes(sources);
        var upward = new List<string>();
        foreach (var (folder, relative) in sources)
        {
            var level = CoreFolders.LevelOf(folder) ?? int.MaxValue;
            foreach (var (target, reference) in CoreFolders.References(folder, File.ReadAllText(Path.Combine(CoreFolders.CoreDirectory, relative)), types))
            {
                if (CoreFolders.LevelOf(target) is { } targetLevel && targetLevel > level)
                {
                    upward.Add($"src/VirtBackup.Core/{relative} ({folder}, level {level}) references {target} (level {targetLevel}): '{reference}'");
                }
            }
        }

        Assert.True(upward.Count == 0, $"references up the layers:\n{string.Join('\n', upward)}");
    }

    [Fact]
    public void The_folders_of_Core_reference_each_other_without_a_cycle()
    {
        var sources = CoreFolders.Sources();
        var types = CoreFolders.DeclaredTypes(sources);
        var edges = new Dictionary<string, Dictionary<string, string>>();
        foreach (var (folder, relative) in sources)
        {
            foreach (var (target, reference) in CoreFolders.References(folder, File.ReadAllText(Path.Combine(CoreFolders.CoreDirectory, relative)), types))
            {
                var from = edges.TryGetValue(folder, out var known) ? known : edges[folder] = [];
                from.TryAdd(target, $"src/VirtBackup.Core/{relative}: '{reference}'");
            }
        }

        var cycle = FindCycle(edges);

        Assert.True(
            cycle is null,
            cycle is null ? string.Empty : $"the folders {string.Join(" → ", cycle)} use each other in a circle:\n"
                + string.Join('\n', cycle.Zip(cycle.Skip(1), (a, b) => $"{a} → {b}: {edges[a][b]}")));
    }

    [Fact]
    public void The_scan_finds_usings_qualified_and_sibling_qualified_names_and_ignores_comments_and_strings()
    {
        const string Source = """
            using VirtBackup.Core.Backup;
            using Writer = VirtBackup.Core.Stream.BackupStreamWriter;
            namespace VirtBackup.Core.Hosts;
            // Capture.DomainRepair in a comment, /* Restore.RestoreRun */ and "Capture.DomainRepair" in a string
            /// <see cref="Capture.DomainRepair"/>
            class X { void F() { _ = new Capture.DomainRepair(); _ = Stream.Null; var s = $"{Hosts.ScratchImages.In("x")}"; var u = @"Capture.DomainRepair"; } }
            """;

        var references = CoreFolders.References("Hosts", Source, Types);

        Assert.Equal(
            [("Backup", "VirtBackup.Core.Backup"), ("Stream", "VirtBackup.Core.Stream"), ("Capture", "Capture.DomainRepair")],
            references);
    }

    [Fact]
    public void The_layers_in_docs_ARCHITECTURE_md_are_the_tables_levels()
    {
        var document = File.ReadAllText(Path.Combine(CoreFolders.RepositoryRoot, "docs", "ARCHITECTURE.md"));
        var documented = Regex.Matches(document, @"^\| *(?<level>\d+) *\| *(?<folders>[^|]+?) *\|", RegexOptions.Multiline)
            .Select(m => (Level: int.Parse(m.Groups["level"].Value, System.Globalization.CultureInfo.InvariantCulture),
                Folders: string.Join(", ", m.Groups["folders"].Value.Split(',', StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal))))
            .OrderBy(row => row.Level)
            .ToList();
        var table = CoreFolders.Layers
            .Select((folders, level) => (Level: level, Folders: string.Join(", ", folders.Order(StringComparer.Ordinal))))
            .ToList();

        Assert.Equal(table, documented);
    }

    /// <summary>A path a → … → a in the graph, or null.</summary>
    private static List<string>? FindCycle(Dictionary<string, Dictionary<string, string>> edges)
    {
        var done = new HashSet<string>();
        foreach (var start in edges.Keys.Order(StringComparer.Ordinal))
        {
            var path = new List<string>();
            if (Visit(start, path))
            {
                return path;
            }
        }

        return null;

        bool Visit(string node, List<string> path)
        {
            if (path.Contains(node))
            {
                path.RemoveRange(0, path.IndexOf(node));
                path.Add(node);
                return true;
            }

            if (!done.Add(node))
            {
                return false;
            }

            path.Add(node);
            foreach (var next in edges.TryGetValue(node, out var targets) ? targets.Keys.Order(StringComparer.Ordinal) : Enumerable.Empty<string>())
            {
                if (Visit(next, path))
                {
                    return true;
                }
            }

            path.RemoveAt(path.Count - 1);
            return false;
        }
    }
}
