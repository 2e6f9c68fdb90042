namespace VirtBackup.CliApp;

/// <summary>One option a verb accepts: a flag, or an option with a value (optionally from a fixed set).</summary>
internal sealed record OptionSpec(string Name, string Help, string? ValueName = null, IReadOnlyList<string>? Allowed = null)
{
    public bool TakesValue => ValueName is not null;
}

/// <summary>The parsed options of one verb: values by option name, flags present or not.</summary>
internal sealed class ParsedOptions
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _flags;

    public ParsedOptions(Dictionary<string, string> values, HashSet<string> flags)
    {
        _values = values;
        _flags = flags;
    }

    /// <summary>The arguments that are not options, in order (only for verbs that declare <see cref="Verbs.IVerb.Operands"/>).</summary>
    public IReadOnlyList<string> Operands { get; init; } = [];

    public string? Value(string name) => _values.GetValueOrDefault(name);

    public bool Flag(string name) => _flags.Contains(name);

    public int IntValue(string name, int fallback, int min, int max)
    {
        var raw = Value(name);
        if (raw is null)
        {
            return fallback;
        }

        if (!int.TryParse(raw, out var v) || v < min || v > max)
        {
            throw new UsageException($"--{name} takes a whole number from {min} to {max}, not '{raw}'");
        }

        return v;
    }

    public IReadOnlyList<string> ListValue(string name) =>
        Value(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
}

/// <summary>Parses <c>--name value</c>, <c>--name=value</c> and <c>--flag</c> against a verb's specs.</summary>
internal static class CommandLine
{
    public static ParsedOptions Parse(string verb, IReadOnlyList<OptionSpec> specs, IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        var operands = new List<string>();
        var acceptsOperands = Verbs.VerbCatalog.All.FirstOrDefault(v => v.Name == verb)?.Operands is not null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                if (!acceptsOperands || arg.Length == 0 || arg == "--")
                {
                    throw new UsageException($"'{verb}' takes no argument '{arg}'");
                }

                operands.Add(arg);
                continue;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? arg[2..] : arg[2..eq];
            var spec = specs.FirstOrDefault(s => s.Name == name)
                ?? throw new UsageException($"unknown option '--{name}' for '{verb}'");
            if (!spec.TakesValue)
            {
                if (eq >= 0)
                {
                    throw new UsageException($"--{name} takes no value");
                }

                flags.Add(name);
                continue;
            }

            string value;
            if (eq >= 0)
            {
                value = arg[(eq + 1)..];
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            else
            {
                throw new UsageException($"--{name} needs a value ({spec.ValueName})");
            }

            if (spec.Allowed is { } allowed && !allowed.Contains(value))
            {
                throw new UsageException($"--{name} takes one of {string.Join('|', allowed)}, not '{value}'");
            }

            if (!values.TryAdd(name, value))
            {
                throw new UsageException($"--{name} is given twice");
            }
        }

        return new ParsedOptions(values, flags) { Operands = operands };
    }
}
