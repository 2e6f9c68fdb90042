using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

internal sealed class VerifyVerb : IVerb
{
    public string Name => "verify";

    public string Summary => "verify a stream on stdin: every checksum and the trailer; writes nothing";

    public IReadOnlyList<OptionSpec> Options { get; } = [];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var input = StreamInput.Open(context, Name);
        var summary = await new BackupStreamReader(input, new ReaderOptions { StopAtEndOfArchive = StreamInput.StopAtEndOfArchive }).VerifyAsync(cancellationToken);
        var m = summary.Manifest;
        var t = summary.Trailer;
        context.Log.Information(
            "stream verified: complete and intact; {Level} backup of {Domain} ({Uuid}), checkpoint {Checkpoint}, parent {Parent}, chain {Chain}, taken {Created:u}; {Members} members, {Bytes} bytes ({Stored} stored)",
            StreamTable.Level(m.Level), m.DomainName, m.DomainUuid, m.Checkpoint ?? "-", m.ParentCheckpoint ?? "-", m.ChainId ?? "-", m.CreatedUtc,
            t.MemberCount, t.TotalBytes, t.TotalStoredBytes);
        return ExitCodes.Success;
    }
}
