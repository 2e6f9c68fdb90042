namespace VirtBackup.CliApp.Verbs;

internal sealed class RestoreVerb : IVerb
{
    public string Name => "restore";

    public string Summary => "restore a domain from a stream on stdin";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken) =>
        throw new NotImplementedException("restore is not implemented yet");
}
