using System.Globalization;
using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>
/// The version-2 disk map, <c>disks/&lt;target&gt;/extents.txt</c>: ASCII lines ending in '\n', decimal numbers
/// without leading zeros, one space between fields (docs/FORMAT.md §4.2):
/// <c>target &lt;target&gt;</c>, <c>virtualSize &lt;bytes&gt;</c>, then one line per extent,
/// <c>d &lt;offset&gt; &lt;length&gt;</c> for data or <c>z &lt;offset&gt; &lt;length&gt;</c> for zeros.
/// About 20 bytes per extent (the JSON map of version 1 takes about 70), parsed line by line.
/// </summary>
public static class DiskMapText
{
    public static byte[] Serialize(DiskMap map)
    {
        var text = new StringBuilder(64 + 24 * map.Extents.Count);
        text.Append("target ").Append(map.Target).Append('\n');
        text.Append("virtualSize ").Append(map.VirtualSize.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var e in map.Extents)
        {
            text.Append(e.Zero ? "z " : "d ").Append(e.Offset.ToString(CultureInfo.InvariantCulture)).Append(' ')
                .Append(e.Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        return Encoding.ASCII.GetBytes(text.ToString());
    }

    /// <summary>Parses a map in its canonical form only (anything else throws <see cref="StreamFormatException"/>).</summary>
    public static DiskMap Parse(ReadOnlySpan<byte> content, string member)
    {
        var lineNumber = 0;
        string? target = null;
        long virtualSize = -1;
        var extents = new List<DiskExtent>();
        while (!content.IsEmpty)
        {
            lineNumber++;
            var end = content.IndexOf((byte)'\n');
            if (end < 0)
            {
                throw Bad(member, lineNumber, "the map does not end with a newline");
            }

            var line = content[..end];
            content = content[(end + 1)..];
            if (lineNumber == 1)
            {
                target = Field(line, "target ", member, lineNumber);
                continue;
            }

            if (lineNumber == 2)
            {
                virtualSize = Number(Field(line, "virtualSize ", member, lineNumber), member, lineNumber);
                continue;
            }

            if (line.Length < 5 || line[0] is not ((byte)'d' or (byte)'z') || line[1] != (byte)' ')
            {
                throw Bad(member, lineNumber, "an extent line is 'd <offset> <length>' or 'z <offset> <length>'");
            }

            var rest = line[2..];
            var space = rest.IndexOf((byte)' ');
            if (space < 0)
            {
                throw Bad(member, lineNumber, "an extent line is 'd <offset> <length>' or 'z <offset> <length>'");
            }

            var offset = Number(Encoding.ASCII.GetString(rest[..space]), member, lineNumber);
            var length = Number(Encoding.ASCII.GetString(rest[(space + 1)..]), member, lineNumber);
            extents.Add(new DiskExtent(offset, length, line[0] == (byte)'z'));
        }

        if (lineNumber < 2)
        {
            throw Bad(member, lineNumber + 1, "the map needs its 'target' and 'virtualSize' lines");
        }

        return new DiskMap(target!, virtualSize, extents);
    }

    private static string Field(ReadOnlySpan<byte> line, string key, string member, int lineNumber)
    {
        var text = Encoding.ASCII.GetString(line);
        if (!text.StartsWith(key, StringComparison.Ordinal) || text.Length == key.Length)
        {
            throw Bad(member, lineNumber, $"expected '{key}<value>'");
        }

        return text[key.Length..];
    }

    private static long Number(string text, string member, int lineNumber)
    {
        if (text.Length is 0 or > 19 || text.AsSpan().ContainsAnyExcept("0123456789") || (text.Length > 1 && text[0] == '0')
            || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            throw Bad(member, lineNumber, $"'{text}' is not a decimal number in canonical form");
        }

        return value;
    }

    private static StreamFormatException Bad(string member, int lineNumber, string problem) =>
        new(member, $"line {lineNumber}: {problem}");
}
