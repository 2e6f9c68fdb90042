namespace VirtBackup.Cli.Verbs;

internal sealed class BackupVerb : IVerb
{
    public string Name => "backup";

    public string Summary => "back up a domain: one tar stream on stdout";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken) =>
        throw new NotImplementedException("backup is not implemented yet");
}
