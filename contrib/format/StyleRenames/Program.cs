using Microsoft.Build.Locator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FindSymbols;
using Microsoft.CodeAnalysis.MSBuild;
using Microsoft.CodeAnalysis.Text;

// Renames what the repository's .editorconfig asks for but `dotnet format` cannot fix (it has no fix for naming
// rules, IDE1006), at every declaration and every reference Roslyn finds (named arguments included):
//   - private and internal instance fields (and mutable static ones) to _camelCase;
//   - parameters and locals of type CancellationToken named `ct` to `cancellationToken`.
// A symbol is left alone (and reported) where its new name is already in scope at its declaration or at any of its
// references: since C# 8 a lambda parameter may shadow an outer one, so such a rename could compile and change
// which symbol a name means. contrib/format.sh builds the solution afterwards.
// Usage: StyleRenames SOLUTION. Exit status 0 when done, 1 when something was left for a person.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: StyleRenames SOLUTION");
    return 2;
}

MSBuildLocator.RegisterDefaults();
return await Renames.RunAsync(Path.GetFullPath(args[0]));

internal static class Renames
{
    private const string TokenName = "cancellationToken";

    public static async Task<int> RunAsync(string solutionPath)
    {
        using var workspace = MSBuildWorkspace.Create();
        var solution = await workspace.OpenSolutionAsync(solutionPath);
        foreach (var diagnostic in workspace.Diagnostics.Where(d => d.Kind == WorkspaceDiagnosticKind.Failure))
        {
            Console.Error.WriteLine($"StyleRenames: {diagnostic.Message}");
        }

        // All edits are found on the unchanged solution, then written at once: each is one identifier.
        var edits = new Dictionary<DocumentId, Dictionary<int, TextChange>>();
        var renamed = 0;
        var leftOver = 0;
        foreach (var (symbol, newName) in await CandidatesAsync(solution))
        {
            var where = Where(symbol.Locations[0]);
            var locations = symbol.Locations.Where(l => l.IsInSource).ToList();
            foreach (var found in await SymbolFinder.FindReferencesAsync(symbol, solution))
            {
                locations.AddRange(found.Locations.Where(l => !l.IsImplicit).Select(l => l.Location));
            }

            if (await FirstConflictAsync(solution, locations, newName) is { } conflict)
            {
                Console.Error.WriteLine($"StyleRenames: {where}: `{symbol.Name}` left as it is: `{newName}` is in scope at {conflict}");
                leftOver++;
                continue;
            }

            foreach (var location in locations)
            {
                var document = solution.GetDocumentId(location.SourceTree) ?? throw new InvalidOperationException(Where(location));
                var changes = edits.TryGetValue(document, out var existing) ? existing : edits[document] = [];
                var span = location.SourceSpan;
                var text = (await location.SourceTree!.GetTextAsync()).ToString(span);
                if (text != symbol.Name)
                {
                    throw new InvalidOperationException($"{Where(location)}: expected `{symbol.Name}`, found `{text}`");
                }

                changes[span.Start] = new TextChange(span, newName);
            }

            Console.Error.WriteLine($"StyleRenames: {where}: {symbol.Name} -> {newName} ({locations.Count} places)");
            renamed++;
        }

        foreach (var (id, changes) in edits)
        {
            var document = solution.GetDocument(id)!;
            var text = await document.GetTextAsync();
            solution = solution.WithDocumentText(id, text.WithChanges(changes.Values.OrderBy(c => c.Span.Start)));
        }

        if (!workspace.TryApplyChanges(solution))
        {
            Console.Error.WriteLine("StyleRenames: could not write the renamed files");
            return 1;
        }

        Console.Error.WriteLine($"StyleRenames: {renamed} renamed, {leftOver} left for a person");
        return leftOver == 0 ? 0 : 1;
    }

    private static string Where(Location location) =>
        $"{location.SourceTree?.FilePath}:{location.GetLineSpan().StartLinePosition.Line + 1}";

    private static async Task<string?> FirstConflictAsync(Solution solution, IEnumerable<Location> locations, string newName)
    {
        foreach (var location in locations)
        {
            var document = solution.GetDocument(location.SourceTree);
            if (document is null || await document.GetSemanticModelAsync() is not { } model)
            {
                return Where(location);
            }

            // A named argument (`ct: token`) names the parameter, not something in scope where the call is.
            var node = (await location.SourceTree!.GetRootAsync()).FindNode(location.SourceSpan, getInnermostNodeForTie: true);
            if (node.Parent is NameColonSyntax)
            {
                continue;
            }

            if (!model.LookupSymbols(location.SourceSpan.Start, name: newName).IsEmpty)
            {
                return Where(location);
            }
        }

        return null;
    }

    private static async Task<List<(ISymbol Symbol, string NewName)>> CandidatesAsync(Solution solution)
    {
        var candidates = new List<(ISymbol, string)>();
        var seen = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        foreach (var project in solution.Projects)
        {
            foreach (var document in project.Documents)
            {
                if (await document.GetSyntaxRootAsync() is not { } root)
                {
                    continue;
                }

                SemanticModel? model = null;
                foreach (var node in root.DescendantNodes())
                {
                    var (identifier, isField) = node switch
                    {
                        VariableDeclaratorSyntax v => (v.Identifier, v.Parent?.Parent is FieldDeclarationSyntax),
                        ParameterSyntax p => (p.Identifier, false),
                        SingleVariableDesignationSyntax d => (d.Identifier, false),
                        _ => (default, false),
                    };
                    var name = identifier.ValueText;
                    if (!(isField ? !IsUnderscoreCamel(name) : name == "ct"))
                    {
                        continue;
                    }

                    model ??= await document.GetSemanticModelAsync();
                    var symbol = model?.GetDeclaredSymbol(node);
                    if (symbol is null || !seen.Add(symbol))
                    {
                        continue;
                    }

                    var newName = symbol switch
                    {
                        IFieldSymbol field => FieldName(field),
                        IParameterSymbol { Type: var type } when IsCancellationToken(type) => TokenName,
                        ILocalSymbol { Type: var type } when IsCancellationToken(type) => TokenName,
                        _ => null,
                    };
                    if (newName is not null)
                    {
                        candidates.Add((symbol, newName));
                    }
                }
            }
        }

        return candidates;
    }

    private static bool IsCancellationToken(ITypeSymbol type) => type.ToDisplayString() == "System.Threading.CancellationToken";

    private static bool IsUnderscoreCamel(string name) => name.Length > 1 && name[0] == '_' && char.IsLower(name[1]);

    /// <summary>The _camelCase name the .editorconfig's naming rules want, or null when the field has it already.</summary>
    private static string? FieldName(IFieldSymbol field)
    {
        if (field.IsConst || (field.IsStatic && field.IsReadOnly) || field.IsImplicitlyDeclared ||
            field.DeclaredAccessibility is not (Accessibility.Private or Accessibility.Internal or Accessibility.ProtectedAndInternal))
        {
            return null;
        }

        // s_name, t_name ([ThreadStatic]) and m_name become _name: the attribute and the modifiers already say so.
        var bare = field.Name.Length > 2 && field.Name[1] == '_' && field.Name[0] is 's' or 't' or 'm'
            ? field.Name[2..]
            : field.Name.TrimStart('_');
        if (bare.Length == 0)
        {
            return null;
        }

        var wanted = "_" + char.ToLowerInvariant(bare[0]) + bare[1..];
        return wanted == field.Name ? null : wanted;
    }
}
