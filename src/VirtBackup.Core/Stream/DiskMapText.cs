using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace VirtBackup.Core.Stream;

/// <summary>
/// The version-2 disk map, <c>disks/&lt;target&gt;/extents.txt</c> (from version 3: each of its pieces, <c>extents-&lt;offset&gt;.txt</c>): ASCII lines ending in '\n', decimal numbers
/// without leading zeros, one space between fields (docs/FORMAT.md §4.2):
/// <c>target &lt;target&gt;</c>, <c>virtualSize &lt;bytes&gt;</c>, then one line per extent,
/// <c>d &lt;offset&gt; &lt;length&gt;</c> for data or <c>z &lt;offset&gt; &lt;length&gt;</c> for zeros.
/// About 20 bytes per extent (the JSON map of version 1 takes about 70). Written straight from the extents in pieces
/// (<see cref="Text"/>) and parsed line by line as its bytes arrive (<see cref="Parser"/>): no whole-map text in memory.
/// </summary>
public static class DiskMapText
{
    /// <summary>The longest line: the target line, or an extent line of two 19-digit numbers.</summary>
    private const int MaxLineLength = 64;

    /// <summary>The whole map as one array (small maps and tests; the writer streams <see cref="Text"/>).</summary>
    public static byte[] Serialize(DiskMap map)
    {
        var text = new Text(map);
        var bytes = new byte[text.Size];
        var filled = text.Fill(bytes);
        return filled == bytes.Length && text.IsDone ? bytes : throw new InvalidOperationException("The map text did not fill its size.");
    }

    /// <summary>Parses a map in its canonical form only (anything else throws <see cref="StreamFormatException"/>).</summary>
    public static DiskMap Parse(ReadOnlySpan<byte> content, string member)
    {
        var parser = new Parser(member);
        parser.Feed(content);
        return parser.Finish();
    }

    /// <summary>The map's text produced piece by piece: whole lines into each buffer given to <see cref="Fill"/>.</summary>
    public sealed class Text(DiskMap map)
    {
        private int _line;

        /// <summary>Bytes of the whole text.</summary>
        public long Size { get; } = ComputeSize(map);

        public bool IsDone => _line == map.Extents.Count + 2;

        /// <summary>Writes as many whole lines as fit into <paramref name="into"/> (at least <see cref="MaxLineLength"/> bytes, unless done); returns the bytes written.</summary>
        public int Fill(Span<byte> into)
        {
            var filled = 0;
            while (!IsDone && into.Length - filled >= MaxLineLength)
            {
                filled += WriteLine(_line++, into[filled..]);
            }

            return filled;
        }

        private int WriteLine(int line, Span<byte> into)
        {
            switch (line)
            {
                case 0:
                    return Ascii(into, "target ", map.Target);
                case 1:
                    return Ascii(into, "virtualSize ", map.VirtualSize.ToString(CultureInfo.InvariantCulture));
            }

            var e = map.Extents[line - 2];
            into[0] = e.Zero ? (byte)'z' : (byte)'d';
            into[1] = (byte)' ';
            Utf8Formatter.TryFormat(e.Offset, into[2..], out var n);
            var at = 2 + n;
            into[at++] = (byte)' ';
            Utf8Formatter.TryFormat(e.Length, into[at..], out n);
            at += n;
            into[at++] = (byte)'\n';
            return at;
        }

        private static int Ascii(Span<byte> into, string key, string value)
        {
            var n = Encoding.ASCII.GetBytes(key, into);
            n += Encoding.ASCII.GetBytes(value, into[n..]);
            into[n] = (byte)'\n';
            return n + 1;
        }

        private static long ComputeSize(DiskMap map)
        {
            long size = "target \n".Length + Encoding.ASCII.GetByteCount(map.Target)
                + "virtualSize \n".Length + Digits(map.VirtualSize);
            if (map.Target.Length > MemberNames.MaxTargetLength)
            {
                throw new ArgumentException($"Target '{map.Target}' is longer than {MemberNames.MaxTargetLength} characters.", nameof(map));
            }

            foreach (var e in map.Extents)
            {
                size += "d  \n".Length + Digits(e.Offset) + Digits(e.Length);
            }

            return size;
        }

        private static int Digits(long value)
        {
            var digits = 1;
            for (; value >= 10; value /= 10)
            {
                digits++;
            }

            return digits;
        }
    }

    /// <summary>Parses a map from its bytes in pieces of any size: <see cref="Feed"/> each, then <see cref="Finish"/>.</summary>
    public sealed class Parser(string member)
    {
        private readonly byte[] _partial = new byte[MaxLineLength];
        private readonly ExtentList _extents = new();
        private int _partialLength;
        private int _lineNumber;
        private string? _target;
        private long _virtualSize = -1;

        public void Feed(ReadOnlySpan<byte> content)
        {
            while (!content.IsEmpty)
            {
                var end = content.IndexOf((byte)'\n');
                if (end < 0)
                {
                    Keep(content);
                    return;
                }

                if (_partialLength > 0)
                {
                    Keep(content[..end]);
                    Line(_partial.AsSpan(0, _partialLength));
                    _partialLength = 0;
                }
                else
                {
                    Line(content[..end]);
                }

                content = content[(end + 1)..];
            }
        }

        public DiskMap Finish()
        {
            if (_partialLength > 0)
            {
                throw Bad(member, _lineNumber + 1, "the map does not end with a newline");
            }

            if (_lineNumber < 2)
            {
                throw Bad(member, _lineNumber + 1, "the map needs its 'target' and 'virtualSize' lines");
            }

            return new DiskMap(_target!, _virtualSize, _extents);
        }

        private void Keep(ReadOnlySpan<byte> piece)
        {
            if (_partialLength + piece.Length > _partial.Length)
            {
                throw Bad(member, _lineNumber + 1, $"a line is longer than {MaxLineLength} bytes");
            }

            piece.CopyTo(_partial.AsSpan(_partialLength));
            _partialLength += piece.Length;
        }

        private void Line(ReadOnlySpan<byte> line)
        {
            var lineNumber = ++_lineNumber;
            if (lineNumber == 1)
            {
                _target = Field(line, "target ", member, lineNumber);
                return;
            }

            if (lineNumber == 2)
            {
                _virtualSize = Number(Encoding.ASCII.GetBytes(Field(line, "virtualSize ", member, lineNumber)), member, lineNumber);
                return;
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

            var offset = Number(rest[..space], member, lineNumber);
            var length = Number(rest[(space + 1)..], member, lineNumber);
            if (length >= 1L << 62)
            {
                throw Bad(member, lineNumber, $"extent length {length} is out of range");
            }

            _extents.Add(new DiskExtent(offset, length, line[0] == (byte)'z'));
        }
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

    private static long Number(ReadOnlySpan<byte> text, string member, int lineNumber)
    {
        if (text.Length is 0 or > 19 || text.ContainsAnyExceptInRange((byte)'0', (byte)'9') || (text.Length > 1 && text[0] == (byte)'0')
            || !Utf8Parser.TryParse(text, out long value, out var consumed) || consumed != text.Length)
        {
            throw Bad(member, lineNumber, $"'{Encoding.ASCII.GetString(text)}' is not a decimal number in canonical form");
        }

        return value;
    }

    private static StreamFormatException Bad(string member, int lineNumber, string problem) =>
        new(member, $"line {lineNumber}: {problem}");
}
