using VirtBackup.Core.Backup;
using VirtBackup.Core.Consolidate;

namespace VirtBackup.CliApp.Verbs;

internal sealed class ConsolidateVerb : IVerb
{
    public string Name => "consolidate";

    public string Summary => "write a synthetic full stream on stdout from stream files (a full, then its incrementals in order): "
        + "what restoring them gives, at the newest checkpoint, so later incrementals apply on it; unchanged data members are copied byte for byte";

    public string? Operands => "FULL [DIFF] INC...";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        if (options.Operands.Count == 0)
        {
            throw new UsageException("give the chain's stream files: the full first, then its incrementals in order");
        }

        if (context.OutputIsTerminal)
        {
            throw new ConsolidateRefusedException("refusing to write a backup stream to a terminal: redirect stdout to a file or pipe it to your backup host");
        }

        if (context.OutputIsClosed)
        {
            throw new ConsolidateRefusedException("stdout was closed when virtbackup started ('>&-'): redirect stdout to a file or pipe it to your backup host");
        }

        var result = await SyntheticFull.WriteAsync(options.Operands, context.StandardOutput, ManifestBuilder.ToolVersion, context.Log, cancellationToken);
        context.Log.Information("consolidate of {Domain} complete: full at checkpoint '{Checkpoint}' of chain '{Chain}' from {Streams} stream(s)",
            result.Manifest.DomainName, result.Manifest.Checkpoint, result.Manifest.ChainId, result.Streams);
        return ExitCodes.Success;
    }
}
