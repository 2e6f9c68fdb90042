using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace VirtBackup.Core.Stream;

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    IndentCharacter = ' ',
    IndentSize = 2,
    NewLine = "\n",
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    AllowDuplicateProperties = false,
    AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow,
    MaxDepth = 16)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(DiskMap))]
[JsonSerializable(typeof(Trailer))]
internal sealed partial class StreamJsonContext : JsonSerializerContext;

/// <summary>Deterministic (de)serialization of the JSON members: same object, same bytes.</summary>
internal static class StreamJson
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static byte[] Serialize(Manifest value) => WithNewline(JsonSerializer.SerializeToUtf8Bytes(value, StreamJsonContext.Default.Manifest));
    public static byte[] Serialize(DiskMap value) => WithNewline(JsonSerializer.SerializeToUtf8Bytes(value, StreamJsonContext.Default.DiskMap));
    public static byte[] Serialize(Trailer value) => WithNewline(JsonSerializer.SerializeToUtf8Bytes(value, StreamJsonContext.Default.Trailer));

    public static Manifest DeserializeManifest(ReadOnlySpan<byte> utf8, string member)
    {
        // Say "unsupported version" rather than "unknown property" for a manifest of a newer format.
        if (PeekFormatVersion(utf8) is { } version and (< 1 or > Manifest.MaxFormatVersion))
        {
            throw new StreamFormatException(member,
                $"format version {version} is not supported (this build reads versions 1 to {Manifest.MaxFormatVersion})");
        }

        return Deserialize(utf8, member, static s => JsonSerializer.Deserialize(s, StreamJsonContext.Default.Manifest));
    }

    private static int? PeekFormatVersion(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isVersion = reader.ValueTextEquals("formatVersion"u8);
                if (!reader.Read())
                {
                    return null;
                }

                if (isVersion)
                {
                    return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var v) ? v : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    public static DiskMap DeserializeMap(ReadOnlySpan<byte> utf8, string member) =>
        Deserialize(utf8, member, static s => JsonSerializer.Deserialize(s, StreamJsonContext.Default.DiskMap));

    public static Trailer DeserializeTrailer(ReadOnlySpan<byte> utf8, string member) =>
        Deserialize(utf8, member, static s => JsonSerializer.Deserialize(s, StreamJsonContext.Default.Trailer));

    public static byte[] Utf8(string text) => StrictUtf8.GetBytes(text);

    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, string member)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new StreamFormatException(member, "content is not valid UTF-8", inner: e);
        }
    }

    private delegate T? Parser<T>(ReadOnlySpan<byte> utf8);

    private static T Deserialize<T>(ReadOnlySpan<byte> utf8, string member, Parser<T> parse) where T : class
    {
        try
        {
            return parse(utf8) ?? throw new StreamFormatException(member, "JSON content is null");
        }
        catch (JsonException e)
        {
            throw new StreamFormatException(member, $"invalid JSON: {e.Message}", inner: e);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            // System.Text.Json reports some malformed input (bad UTF-8, required members) with these.
            throw new StreamFormatException(member, $"invalid JSON: {e.Message}", inner: e);
        }
    }

    private static byte[] WithNewline(byte[] json)
    {
        var result = new byte[json.Length + 1];
        json.CopyTo(result, 0);
        result[^1] = (byte)'\n';
        return result;
    }
}
