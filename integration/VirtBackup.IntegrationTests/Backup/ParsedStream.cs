using System.Text;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// A backup stream taken apart by our own validating reader, for assertions: manifest, state files,
/// disk maps, and each disk's data applied onto an image in memory.
/// </summary>
public sealed class ParsedStream
{
    private ParsedStream(byte[] bytes) => Bytes = bytes;

    public byte[] Bytes { get; }

    public Manifest Manifest { get; private set; } = null!;

    public string DomainXml { get; private set; } = string.Empty;

    public byte[]? Nvram { get; private set; }

    public SortedDictionary<string, byte[]> TpmFiles { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, DiskMap> Maps { get; } = [];

    /// <summary>Data member bytes by disk, offset → decoded bytes.</summary>
    public Dictionary<string, SortedDictionary<long, byte[]>> Data { get; } = [];

    public static async Task<ParsedStream> ReadAsync(byte[] bytes)
    {
        var parsed = new ParsedStream(bytes);
        await foreach (var member in new BackupStreamReader(new MemoryStream(bytes)).ReadAsync())
        {
            switch (member)
            {
                case ManifestMember m:
                    parsed.Manifest = m.Manifest;
                    break;
                case DomainXmlMember x:
                    parsed.DomainXml = x.Xml;
                    break;
                case NvramMember n:
                    parsed.Nvram = n.Content.ToArray();
                    break;
                case TpmFileMember t:
                    parsed.TpmFiles[t.RelativePath] = t.Content.ToArray();
                    break;
                case DiskMapMember { IsFirstPiece: true } map:
                    parsed.Maps[map.Map.Target] = map.Map;
                    parsed.Data[map.Map.Target] = [];
                    break;
                case DiskMapMember piece: // a later piece of a version-3 map: its extents follow the pieces before
                    var before = parsed.Maps[piece.Map.Target];
                    parsed.Maps[piece.Map.Target] = before with { Extents = [.. before.Extents, .. piece.Map.Extents] };
                    break;
                case DiskDataMember d:
                    foreach (var s in d.Segments)
                    {
                        parsed.Data[d.Target][s.DiskOffset] = d.Data.Slice(s.ContentOffset, s.Length).ToArray();
                    }

                    break;
            }
        }

        return parsed;
    }

    /// <summary>Applies disk <paramref name="target"/>'s map and data onto <paramref name="image"/>, as a restore would.</summary>
    public void ApplyTo(string target, byte[] image)
    {
        foreach (var extent in Maps[target].Extents.Where(e => e.Zero))
        {
            Array.Clear(image, (int)extent.Offset, (int)extent.Length);
        }

        foreach (var (offset, data) in Data[target])
        {
            data.CopyTo(image, offset);
        }
    }

    /// <summary>The raw bytes (header, data, padding) of every member whose name starts with <paramref name="prefix"/>.</summary>
    public IReadOnlyList<(string Name, byte[] Raw)> RawMembers(string prefix)
    {
        var members = new List<(string, byte[])>();
        var position = 0;
        while (position + 512 <= Bytes.Length && Bytes[position] != 0)
        {
            var name = Encoding.ASCII.GetString(Bytes, position, 100).TrimEnd('\0');
            var prefixField = Encoding.ASCII.GetString(Bytes, position + 345, 155).TrimEnd('\0');
            if (prefixField.Length > 0)
            {
                name = $"{prefixField}/{name}";
            }

            var size = Convert.ToInt64(Encoding.ASCII.GetString(Bytes, position + 124, 12).Trim('\0', ' '), 8);
            var total = 512 + (int)((size + 511) / 512 * 512);
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                members.Add((name, Bytes.AsSpan(position, total).ToArray()));
            }

            position += total;
        }

        return members;
    }

    /// <summary>A disk's bytes as the lab's --fill layout made it (holes and zero runs read as zeros).</summary>
    public static byte[] Expected(IReadOnlyList<LabRun> layout, long size)
    {
        var image = new byte[size];
        foreach (var run in layout.Where(r => r.Pattern is not null))
        {
            image.AsSpan((int)run.Offset, (int)run.Length).Fill(run.Pattern!.Value);
        }

        return image;
    }
}
