using System.Text.Json;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// The <c>list</c> pass: reads a stream with every structural check but without decoding disk data
/// (<see cref="ReaderOptions.ListOnly"/>), reporting each member as it goes. Throws
/// <see cref="StreamFormatException"/> at the first problem, like any reader.
/// </summary>
public static class StreamListing
{
    public static Task<StreamSummary> ReadAsync(System.IO.Stream input, Action<StreamMember> onMember, CancellationToken cancellationToken) =>
        ReadAsync(input, stopAtEndOfArchive: false, onMember, cancellationToken);

    /// <param name="stopAtEndOfArchive">The input may go on after the stream (stdin): see <see cref="ReaderOptions.StopAtEndOfArchive"/>.</param>
    public static async Task<StreamSummary> ReadAsync(System.IO.Stream input, bool stopAtEndOfArchive, Action<StreamMember> onMember, CancellationToken cancellationToken)
    {
        var reader = new BackupStreamReader(input, ReaderOptions.ListOnly with { StopAtEndOfArchive = stopAtEndOfArchive });
        Manifest? manifest = null;
        Trailer? trailer = null;
        await foreach (var member in reader.ReadAsync(cancellationToken))
        {
            switch (member)
            {
                case ManifestMember m:
                    manifest = m.Manifest;
                    break;
                case TrailerMember t:
                    trailer = t.Trailer;
                    break;
            }

            onMember(member);
        }

        return new StreamSummary(manifest!, trailer!);
    }

    /// <summary><c>{"manifest": ..., "trailer": ...}</c> in the stream's own JSON forms, indented, with a final newline.</summary>
    public static byte[] ToJson(StreamSummary summary)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("manifest");
            JsonSerializer.Serialize(writer, summary.Manifest, StreamJsonContext.Default.Manifest);
            writer.WritePropertyName("trailer");
            JsonSerializer.Serialize(writer, summary.Trailer, StreamJsonContext.Default.Trailer);
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
