using Serilog;

namespace VirtBackup.CliApp.Verbs;

/// <summary>What a verb gets from the process: the data streams, the log and the environment.</summary>
internal sealed record VerbContext(
    Stream StandardInput,
    Stream StandardOutput,
    bool OutputIsTerminal,
    bool InputIsTerminal,
    bool ErrorIsTerminal,
    ILogger Log,
    Func<string, string?> Environment)
{
    /// <summary>The shell closed stdout (<c>&gt;&amp;-</c>): a verb that writes a stream refuses before it starts.</summary>
    public bool OutputIsClosed { get; init; }
}

/// <summary>One command of the CLI: its options and a flat run method that wires Core together.</summary>
internal interface IVerb
{
    string Name { get; }

    string Summary { get; }

    IReadOnlyList<OptionSpec> Options { get; }

    /// <summary>What the verb's non-option arguments are, for help (e.g. "STREAM..."); null: it takes none.</summary>
    string? Operands => null;

    Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken);
}
