namespace VirtBackup.CliApp.Verbs;

internal sealed class VerifyVerb : IVerb
{
    public string Name => "verify";

    public string Summary => "verify a stream on stdin: every checksum and the trailer; writes nothing";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken) =>
        throw new NotImplementedException("verify is not implemented yet");
}
