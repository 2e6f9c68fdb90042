using VirtBackup.Core.Restore;

namespace VirtBackup.CliApp.Verbs;

internal sealed class ListVerb : IVerb
{
    public string Name => "list";

    public string Summary => "list the manifest and members of a stream on stdin (a table, or --json); checks it without decoding disk data";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("json", "print one JSON document (manifest and trailer) once the whole stream is checked, instead of the table"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var input = StreamInput.Open(context, Name);
        var output = context.StandardOutput;
        if (options.Flag("json"))
        {
            var summary = await StreamListing.ReadAsync(input, StreamInput.StopAtEndOfArchive, _ => { }, cancellationToken);
            await output.WriteAsync(StreamListing.ToJson(summary), cancellationToken);
            await output.FlushAsync(cancellationToken);
            return ExitCodes.Success;
        }

        // Lines go out as members are read, so a long stream shows progress and a broken one shows where it broke.
        await using var text = new StreamWriter(output, leaveOpen: true) { NewLine = "\n", AutoFlush = true };
        var table = await StreamListing.ReadAsync(input, StreamInput.StopAtEndOfArchive, member =>
        {
            foreach (var line in StreamTable.Lines(member))
            {
                text.WriteLine(line);
            }
        }, cancellationToken);
        text.WriteLine(StreamTable.Summary(table.Trailer));
        return ExitCodes.Success;
    }
}
