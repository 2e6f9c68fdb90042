using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

internal sealed class VerifyVerb : IVerb
{
    public string Name => "verify";

    public string Summary => "verify a stream on stdin: every checksum and the trailer; writes nothing. With --boot: boot an isolated throwaway copy of a chain of stream files and check that it comes up";

    public string? Operands => "[STREAM...] (with --boot)";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("boot", "boot the chain STREAM... (a full, then its incrementals) as a throwaway domain vbverify-XXXXXXXX without network, check that it comes up, remove it again"),
        new("timeout", $"--boot: seconds it gets to come up; with nothing to wait for (no agent, no --expect-console) it must still run then (default {VerifyBoot.DefaultTimeoutSeconds})", "S"),
        new("expect-console", "--boot: the serial console must match this regular expression", "REGEX"),
        new("screenshot", "--boot: save a PNG of the guest's display here", "FILE.png"),
        new("json", "--boot: print the report as JSON on stdout"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        if (options.Flag("boot"))
        {
            return await VerifyBoot.RunAsync(options, context, cancellationToken);
        }

        if (options.Operands.Count > 0 || options.Flag("json") || options.Value("timeout") is not null
            || options.Value("expect-console") is not null || options.Value("screenshot") is not null)
        {
            throw new UsageException("stream files, --timeout, --expect-console, --screenshot and --json go with --boot; without it the stream comes on stdin");
        }

        var input = StreamInput.Open(context, Name);
        var summary = await new BackupStreamReader(input, new ReaderOptions { StopAtEndOfArchive = StreamInput.StopAtEndOfArchive }).VerifyAsync(cancellationToken);
        var m = summary.Manifest;
        var t = summary.Trailer;
        context.Log.Information(
            "stream verified: complete and intact; {Level} backup of {Domain} ({Uuid}), checkpoint {Checkpoint}, parent {Parent}, chain {Chain} ({ChainName}), taken {Created:u}; {Members} members, {Bytes} bytes ({Stored} stored)",
            StreamTable.Level(m.Level), m.DomainName, m.DomainUuid, m.Checkpoint ?? "-", m.ParentCheckpoint ?? "-", m.ChainId ?? "-", m.Chain ?? "unnamed", m.CreatedUtc,
            t.MemberCount, t.TotalBytes, t.TotalStoredBytes);
        return ExitCodes.Success;
    }
}
