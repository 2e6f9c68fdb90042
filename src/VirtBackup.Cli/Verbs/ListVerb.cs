namespace VirtBackup.CliApp.Verbs;

internal sealed class ListVerb : IVerb
{
    public string Name => "list";

    public string Summary => "list the manifest and members of a stream on stdin";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken) =>
        throw new NotImplementedException("list is not implemented yet");
}
