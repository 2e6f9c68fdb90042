using System.Text;
using System.Text.Json.Nodes;

namespace VirtBackup.Tests.Reliability;

/// <summary>One input for the fuzz tests: what was done to the valid stream, and the bytes.</summary>
internal sealed record Mutant(string Kind, string Description, byte[] Stream);

/// <summary>
/// Bad input made from a valid stream, deterministically from a seed: bit flips, byte runs, truncation at and
/// inside members, members reordered, duplicated and missing, headers with absurd sizes and other entry types (with
/// valid checksums, so the reader must look deeper), hostile names, manifests and maps with absurd values, data after
/// the end, tar bombs of tiny members and input that is not tar at all. Every kind appears in every batch.
/// </summary>
internal sealed class StreamMutator(byte[] valid, int seed)
{
    private static readonly string[] HostileNames =
    [
        "../../etc/cron.d/evil", "/etc/passwd", "state/nvram/../../../evil", "state/tpm/../../x", "state/tpm/a/../../b",
        "disks/vda/../../../x", "state/nvram/a/b", "state/tpm/a\\b", "disks/../vda/extents.json", "state/tpm//x",
        "./virtbackup/manifest.json", "virtbackup/manifest.json/", "state/tpm/.", "state/tpm/..", "disks/vda/-1.zst",
        "disks/vda/ffffffffffffffff.zst", "disks/VDA/extents.json", "state/tpm/" + new string('a', 90), "virtbackup/trailer.json\u0001",
    ];

    private static readonly (byte Type, string What)[] EntryTypes =
    [
        ((byte)'1', "hard link"), ((byte)'2', "symlink"), ((byte)'3', "char device"), ((byte)'4', "block device"),
        ((byte)'5', "directory"), ((byte)'6', "fifo"), ((byte)'L', "GNU long name"), ((byte)'x', "pax header"), ((byte)'S', "GNU sparse"),
    ];

    private readonly List<TarRecord> _records = TarSurgery.Records(valid);
    private readonly Random _rnd = new(seed);

    private delegate Mutant Generator();

    /// <summary><paramref name="count"/> mutants, cycling through every kind.</summary>
    public IEnumerable<Mutant> Generate(int count)
    {
        Generator[] kinds =
        [
            BitFlips, ByteRun, TruncateAtMember, TruncateInsideMember, SwapMembers, MoveMember, DuplicateMember, RemoveMember,
            AbsurdSize, OtherEntryType, HostileName, ManifestValues, MapValues, TrailingData, NotTar,
        ];
        for (var i = 0; i < count; i++)
        {
            yield return kinds[i % kinds.Length]();
        }
    }

    private Mutant BitFlips()
    {
        var copy = (byte[])valid.Clone();
        var flips = 1 + _rnd.Next(8);
        var at = new List<int>();
        for (var i = 0; i < flips; i++)
        {
            var offset = _rnd.Next(copy.Length);
            copy[offset] ^= (byte)(1 << _rnd.Next(8));
            at.Add(offset);
        }

        return new("bit flips", $"{flips} bits flipped at {string.Join(",", at)}", copy);
    }

    private Mutant ByteRun()
    {
        var copy = (byte[])valid.Clone();
        var length = 1 + _rnd.Next(64);
        var at = _rnd.Next(copy.Length - length);
        _rnd.NextBytes(copy.AsSpan(at, length));
        return new("byte run", $"{length} random bytes at {at}", copy);
    }

    private Mutant TruncateAtMember()
    {
        var r = Pick();
        var end = _rnd.Next(2) == 0 ? r.HeaderOffset : r.End;
        return new("truncation at a member", $"cut at byte {end} ({(end == r.HeaderOffset ? "before" : "after")} {r.Name})", valid[..(int)end]);
    }

    private Mutant TruncateInsideMember()
    {
        var r = Pick();
        var end = r.HeaderOffset + 1 + _rnd.NextInt64(r.Length - 1);
        return new("truncation inside a member", $"cut at byte {end}, inside {r.Name}", valid[..(int)end]);
    }

    private Mutant SwapMembers()
    {
        var blocks = Blocks();
        int a = _rnd.Next(blocks.Count), b = (a + 1 + _rnd.Next(blocks.Count - 1)) % blocks.Count;
        (blocks[a], blocks[b]) = (blocks[b], blocks[a]);
        return new("reordered members", $"{_records[a].Name} and {_records[b].Name} swapped", TarSurgery.Join(blocks));
    }

    private Mutant MoveMember()
    {
        var blocks = Blocks();
        var from = _rnd.Next(blocks.Count);
        var block = blocks[from];
        blocks.RemoveAt(from);
        var to = (from + 1 + _rnd.Next(blocks.Count)) % (blocks.Count + 1); // never back where it was
        blocks.Insert(to, block);
        return new("reordered members", $"{_records[from].Name} moved to position {to}", TarSurgery.Join(blocks));
    }

    private Mutant DuplicateMember()
    {
        var blocks = Blocks();
        var which = _rnd.Next(blocks.Count);
        blocks.Insert(_rnd.Next(blocks.Count + 1), blocks[which]);
        return new("duplicated member", $"{_records[which].Name} duplicated", TarSurgery.Join(blocks));
    }

    private Mutant RemoveMember()
    {
        var blocks = Blocks();
        var which = _rnd.Next(blocks.Count);
        blocks.RemoveAt(which);
        return new("missing member", $"{_records[which].Name} removed", TarSurgery.Join(blocks));
    }

    /// <summary>A size field of 8 GiB, of more than the rest of the stream, or in GNU base-256; the checksum is made valid again.</summary>
    private Mutant AbsurdSize()
    {
        var r = Pick();
        var copy = (byte[])valid.Clone();
        var header = copy.AsSpan((int)r.HeaderOffset, 512);
        string what;
        switch (_rnd.Next(4))
        {
            case 0:
                Encoding.ASCII.GetBytes("77777777777\0").CopyTo(header[124..]);
                what = "8 GiB - 1 (octal maximum)";
                break;
            case 1:
                var size = valid.Length - r.ContentOffset + 1 + _rnd.Next(1 << 20);
                Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(header[124..]);
                what = $"{size} (past the end of the stream)";
                break;
            case 2:
                header.Slice(124, 12).Clear();
                header[124] = 0x80;
                header[128] = 0x40; // 2^62 in base-256
                what = "2^62 in GNU base-256";
                break;
            default:
                header[124] = (byte)'-';
                what = "negative";
                break;
        }

        Checksum(header);
        return new("absurd size", $"{r.Name} claims a size of {what}", copy);
    }

    private Mutant OtherEntryType()
    {
        var r = Pick();
        var (type, what) = EntryTypes[_rnd.Next(EntryTypes.Length)];
        var copy = (byte[])valid.Clone();
        var header = copy.AsSpan((int)r.HeaderOffset, 512);
        header[156] = type;
        Encoding.ASCII.GetBytes("/etc/shadow").CopyTo(header[157..]); // linkname
        Checksum(header);
        return new("other entry type", $"{r.Name} made a {what}", copy);
    }

    private Mutant HostileName()
    {
        var r = Pick();
        var name = HostileNames[_rnd.Next(HostileNames.Length)];
        var blocks = Blocks();
        blocks[_records.IndexOf(r)] = Member(name, TarSurgery.Content(valid, r));
        return new("hostile name", $"{r.Name} renamed to {name}", TarSurgery.Join(blocks));
    }

    /// <summary>The manifest rewritten with absurd values (the trailer no longer matches: the reader may notice only at the end).</summary>
    private Mutant ManifestValues()
    {
        var manifest = _records[0];
        var json = JsonNode.Parse(TarSurgery.Content(valid, manifest))!.AsObject();
        var disk = json["disks"]![0]!.AsObject();
        (string What, Action Change)[] changes =
        [
            ("virtualSize 1 PiB", () => disk["virtualSize"] = 1L << 50),
            ("virtualSize 2^62", () => disk["virtualSize"] = 1L << 62),
            ("virtualSize -1", () => disk["virtualSize"] = -1),
            ("memberSize int.MaxValue", () => json["compression"]!["memberSize"] = int.MaxValue),
            ("memberSize 1", () => json["compression"]!["memberSize"] = 1),
            ("10000 disks", () => json["disks"] = new JsonArray(Enumerable.Range(0, 10_000).Select(i => (JsonNode)JsonNode.Parse(disk.ToJsonString().Replace("\"vda\"", $"\"vd{i}\"", StringComparison.Ordinal))!).ToArray())),
            ("target '../x'", () => disk["target"] = "../x"),
            ("domain name '../../etc'", () => json["domainName"] = "../../etc"),
            ("domain UUID 'not-a-uuid'", () => json["domainUuid"] = "not-a-uuid"),
            ("format version 99", () => json["formatVersion"] = 99),
            ("level 'weekly'", () => json["level"] = "weekly"),
            ("no disks", () => json["disks"] = new JsonArray()),
            ("nested 10000 deep", () => json["warnings"] = JsonNode.Parse(new string('[', 10_000) + new string(']', 10_000))),
        ];
        var (what, change) = changes[_rnd.Next(changes.Length)];
        try
        {
            change();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            // System.Text.Json refuses to build it: send the raw text instead.
            return WithMember(manifest, Encoding.UTF8.GetBytes(json.ToJsonString()[..^1] + ",\"warnings\":" + new string('[', 10_000) + new string(']', 10_000) + "}"), "manifest values", what);
        }

        return WithMember(manifest, Encoding.UTF8.GetBytes(json.ToJsonString()), "manifest values", what);
    }

    private Mutant MapValues()
    {
        if (_records.FirstOrDefault(r => r.Name.EndsWith(".txt", StringComparison.Ordinal) && r.Name.Contains("/extents", StringComparison.Ordinal)) is { } textMap)
        {
            return TextMapValues(textMap);
        }

        var map = _records.First(r => r.Name.EndsWith("extents.json", StringComparison.Ordinal));
        var json = JsonNode.Parse(TarSurgery.Content(valid, map))!.AsObject();
        var extents = json["extents"]!.AsArray();
        var first = extents[0]!.AsObject();
        (string What, Action Change)[] changes =
        [
            ("an extent of 2^62 bytes", () => first["length"] = 1L << 62),
            ("a negative offset", () => first["offset"] = -512),
            ("overlapping extents", () => extents.Add(JsonNode.Parse(first.ToJsonString()))),
            ("an extent past the end", () => first["offset"] = 1L << 40),
            ("200000 extents", () =>
            {
                extents.Clear();
                for (var i = 0; i < 200_000; i++)
                {
                    extents.Add(new JsonObject { ["offset"] = i * 2L, ["length"] = 1, ["zero"] = i % 2 == 0 });
                }
            }),
            ("virtualSize 0", () => json["virtualSize"] = 0),
            ("extents null", () => json["extents"] = null),
        ];
        var (what, change) = changes[_rnd.Next(changes.Length)];
        change();
        return WithMember(map, Encoding.UTF8.GetBytes(json.ToJsonString()), "map values", what);
    }

    /// <summary>The version-2 map (lines of text): the same kinds of lies as <see cref="MapValues"/> tells a JSON map.</summary>
    private Mutant TextMapValues(TarRecord map)
    {
        var lines = Encoding.ASCII.GetString(TarSurgery.Content(valid, map)).TrimEnd('\n').Split('\n').ToList();
        var first = lines[2].Split(' ');
        (string What, Action Change)[] changes =
        [
            ("an extent of 2^62 bytes", () => lines[2] = $"{first[0]} {first[1]} {1L << 62}"),
            ("a negative offset", () => lines[2] = $"{first[0]} -512 {first[2]}"),
            ("overlapping extents", () => lines.Insert(3, lines[2])),
            ("an extent past the end", () => lines[2] = $"{first[0]} {1L << 40} {first[2]}"),
            ("a leading zero", () => lines[2] = $"{first[0]} 0{first[1]} {first[2]}"),
            ("200000 extents", () =>
            {
                lines.RemoveRange(2, lines.Count - 2);
                for (var i = 0; i < 200_000; i++)
                {
                    lines.Add($"{(i % 2 == 0 ? 'z' : 'd')} {i * 2L} 1");
                }
            }),
            ("virtualSize 0", () => lines[1] = "virtualSize 0"),
            ("no target line", () => lines.RemoveAt(0)),
        ];
        var (what, change) = changes[_rnd.Next(changes.Length)];
        change();
        return WithMember(map, Encoding.ASCII.GetBytes(string.Join('\n', lines) + "\n"), "map values", what);
    }

    private Mutant TrailingData()
    {
        (string What, byte[] Bytes)[] tails =
        [
            ("a second copy of the stream", valid),
            ("a stray member", Member("virtbackup/manifest.json", [1, 2, 3])),
            ("random bytes", Random(1 + _rnd.Next(4096))),
            ("a lone 1 byte", [1]),
        ];
        var (what, tail) = tails[_rnd.Next(tails.Length)];
        return new("data after the end", $"the valid stream followed by {what}", [.. valid, .. tail]);
    }

    private Mutant NotTar()
    {
        (string What, Func<byte[]> Make)[] inputs =
        [
            ("empty input", () => []),
            ("one byte", () => [0x42]),
            ("511 zero bytes", () => new byte[511]),
            ("1 MiB of zeros", () => new byte[1 << 20]),
            ("random bytes", () => Random(1 + _rnd.Next(1 << 16))),
            ("gzip magic and noise", () => [0x1f, 0x8b, 0x08, 0, .. Random(4000)]),
            ("zstd magic and noise", () => [0x28, 0xb5, 0x2f, 0xfd, .. Random(4000)]),
            ("text", () => Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("this is not a backup stream\n", 500)))),
            ("XML", () => Encoding.UTF8.GetBytes("<domain type='kvm'><name>win11</name></domain>")),
            ("a tar bomb: 20000 empty members", () => TarSurgery.Join(Enumerable.Range(0, 20_000).Select(i => Member($"f/{i:D6}", [])))),
            ("a tar of one large member", () => TarSurgery.Join([Member("big.bin", new byte[4 << 20])])),
            ("a valid stream's last half", () => valid[(valid.Length / 2 / 512 * 512)..]),
        ];
        var (what, make) = inputs[_rnd.Next(inputs.Length)];
        return new("not tar or not ours", what, make());
    }

    private Mutant WithMember(TarRecord record, byte[] content, string kind, string what)
    {
        var blocks = Blocks();
        blocks[_records.IndexOf(record)] = Member(record.Name, content);
        return new(kind, $"{record.Name} with {what}", TarSurgery.Join(blocks));
    }

    private TarRecord Pick() => _records[_rnd.Next(_records.Count)];

    private List<byte[]> Blocks() => _records.Select(r => TarSurgery.Bytes(valid, r)).ToList();

    private byte[] Random(int length)
    {
        var bytes = new byte[length];
        _rnd.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A member with a canonical header, for any name (even ones the writer would refuse).</summary>
    private static byte[] Member(string name, byte[] content)
    {
        var bytes = new byte[512 + (content.Length + 511) / 512 * 512];
        var header = bytes.AsSpan(0, 512);
        TarHeader.Write(header, "x", content.Length);
        header[..100].Clear();
        var raw = Encoding.UTF8.GetBytes(name);
        raw.AsSpan(0, Math.Min(raw.Length, 100)).CopyTo(header);
        Checksum(header);
        content.CopyTo(bytes, 512);
        return bytes;
    }

    private static void Checksum(Span<byte> header)
    {
        header.Slice(148, 8).Fill((byte)' ');
        var sum = TarHeader.ComputeChecksum(header);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header[148..]);
    }
}
