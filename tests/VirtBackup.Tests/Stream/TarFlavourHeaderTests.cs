using System.Text;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// Hand-made headers of the flavours other tar tools write (GNU long names, pax records, ustar prefix, base-256
/// sizes) in front of the NVRAM member of a valid stream: the well formed ones are read as that member, the
/// malformed ones refused with what is wrong, before anything is allocated from an untrusted size.
/// </summary>
public class TarFlavourHeaderTests
{
    private const string Nvram = "state/nvram/win11_VARS.fd";
    private const string PaxName = "state/nvram/PaxHeaders/win11_VARS.fd";

    private static async Task<(byte[] Stream, List<TarRecord> Records)> ValidAsync()
    {
        var stream = (await StreamFixtures.BuildAsync(Compression.Zstd, nvramSize: 3_000)).Stream;
        return (stream, TarSurgery.Records(stream));
    }

    /// <summary>The stream with the NVRAM member's blocks replaced by <paramref name="replace"/>(its header, its content with padding).</summary>
    private static async Task<(byte[] Original, byte[] Changed)> WithNvramAsync(Func<byte[], byte[], byte[][]> replace)
    {
        var (stream, records) = await ValidAsync();
        var blocks = records.Select(r =>
        {
            var bytes = TarSurgery.Bytes(stream, r);
            return r.Name == Nvram ? replace(bytes[..512], bytes[512..]).SelectMany(b => b).ToArray() : bytes;
        });
        return (stream, TarSurgery.Join(blocks));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_gnu_long_name_entry_names_the_member_after_it()
    {
        var (original, changed) = await WithNvramAsync((header, content) =>
            [Entry((byte)'L', "././@LongLink", Encoding.ASCII.GetBytes(Nvram + "\0"), gnu: true), Rewrite(header, gnu: true, name: "truncated-name"), content]);

        Assert.Equal(await RewrittenStreamTests.FingerprintAsync(original), await RewrittenStreamTests.FingerprintAsync(changed));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_pax_path_and_size_override_the_header_name_and_size()
    {
        var (original, changed) = await WithNvramAsync((header, content) =>
            [Entry((byte)'x', PaxName, Pax(("path", Nvram), ("size", "3000"), ("mtime", "1700000000.25"), ("SCHILY.xattr.user.x", "\u0001"))),
             Rewrite(header, name: "other-name", size: 0), content]);

        Assert.Equal(await RewrittenStreamTests.FingerprintAsync(original), await RewrittenStreamTests.FingerprintAsync(changed));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_ustar_prefix_is_joined_to_the_name_and_a_pax_global_header_without_path_or_size_is_ignored()
    {
        var (original, changed) = await WithNvramAsync((header, content) =>
            [Entry((byte)'g', "pax_global_header", Pax(("comment", "repacked by hand"))), Rewrite(header, name: "win11_VARS.fd", prefix: "state/nvram"), content]);

        Assert.Equal(await RewrittenStreamTests.FingerprintAsync(original), await RewrittenStreamTests.FingerprintAsync(changed));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_gnu_base_256_size_is_read()
    {
        var (original, changed) = await WithNvramAsync((header, content) =>
            [Rewrite(header, gnu: true, tweak: h => { h.AsSpan(124, 12).Clear(); h[124] = 0x80; h[134] = 3000 >> 8; h[135] = 3000 & 0xFF; }), content]);

        Assert.Equal(await RewrittenStreamTests.FingerprintAsync(original), await RewrittenStreamTests.FingerprintAsync(changed));
    }

    [Theory(Timeout = 10_000)]
    [InlineData("99 path=state/nvram/win11_VARS.fd\n", "pax record at byte 0 claims 99 bytes; 34 remain and a record needs at least 6")]
    [InlineData("3 a=\n", "pax record at byte 0 claims 3 bytes; 5 remain and a record needs at least 5")]
    [InlineData("path=x\n", "pax record at byte 0 does not start with a decimal length and a space")]
    [InlineData("-5 a=b\n", "pax record at byte 0 does not start with a decimal length and a space")]
    [InlineData("1234567890 a=b\n", "pax record at byte 0 does not start with a decimal length and a space")]
    [InlineData("7 a=bc\n8 a=bc\n", "pax record at byte 7 claims 8 bytes; 7 remain and a record needs at least 5")]
    [InlineData("7 a=bcd\n", "pax record at byte 0 does not end with a newline where its length says")]
    [InlineData("6 abc\n", "pax record at byte 0 has no 'key=' part")]
    [InlineData("6 =bc\n", "pax record at byte 0 has no 'key=' part")]
    [InlineData("12 mtime=ab\n", "pax record 'mtime': 'ab' is not a number")]
    [InlineData("8 size=\n", "pax record 'size': size '' is not a decimal number")]
    [InlineData("11 size=-1\n", "pax record 'size': size '-1' is not a decimal number")]
    [InlineData("10 path=a\n10 path=b\n", "pax record 'path': appears twice")]
    [InlineData("12 path=a\u0001b\n", "pax record 'path': path 'a\\x01b' is empty or contains non-printable or non-ASCII bytes")]
    [InlineData("19 linkpath=/etc/x\n", "pax record 'linkpath': links are not allowed")]
    [InlineData("22 GNU.sparse.size=10\n", "pax record 'GNU.sparse.size': sparse files are not allowed")]
    public async Task A_malformed_pax_extended_header_is_refused_naming_what_is_wrong(string records, string problem)
    {
        var (_, changed) = await WithNvramAsync((header, content) => [Entry((byte)'x', PaxName, Encoding.ASCII.GetBytes(records)), header, content]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(PaxName, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Theory(Timeout = 10_000)]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("state/nvram/../../etc/cron.d/x", "name has a '..' segment")]
    [InlineData("state/tpm//x", "name has an empty path segment")]
    public async Task A_pax_path_or_gnu_long_name_is_held_to_the_member_name_rules(string name, string problem)
    {
        foreach (var pax in new[] { true, false })
        {
            var (_, changed) = await WithNvramAsync((header, content) =>
                [pax ? Entry((byte)'x', PaxName, Pax(("path", name))) : Entry((byte)'L', "././@LongLink", Encoding.ASCII.GetBytes(name + "\0"), gnu: true), header, content]);

            var e = await StreamFixtures.RefusedAsync(changed);

            Assert.Equal(name, e.Member);
            Assert.Equal(problem, e.Problem);
        }
    }

    [Theory(Timeout = 10_000)]
    [InlineData('g', "pax_global_header", "16 path=a/b/c/d\n", "pax record 'path': a pax global header may not set it (it would apply to every member)")]
    [InlineData('g', "pax_global_header", "11 size=10\n", "pax record 'size': a pax global header may not set it (it would apply to every member)")]
    [InlineData('L', "././@LongLink", "state/nvram/\u0001x\0", "GNU long name 'state/nvram/\\x01x' contains non-printable or non-ASCII bytes")]
    [InlineData('L', "././@LongLink", "state/nvram/x\0junk", "GNU long name has bytes after its terminating NUL")]
    [InlineData('L', "././@LongLink", "\0", "GNU long name is empty")]
    public async Task A_malformed_extension_entry_is_refused_naming_what_is_wrong(char type, string name, string content, string problem)
    {
        var (_, changed) = await WithNvramAsync((header, data) => [Entry((byte)type, name, Encoding.ASCII.GetBytes(content), gnu: type == 'L'), header, data]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(name, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Theory(Timeout = 10_000)]
    [InlineData('x', BackupStreamReader.MaxPaxHeaderSize + 1)]
    [InlineData('g', BackupStreamReader.MaxPaxHeaderSize + 1)]
    [InlineData('L', BackupStreamReader.MaxLongNameSize + 1)]
    [InlineData('x', 1L << 40)]
    public async Task An_oversized_extension_entry_is_refused_before_its_content_is_read(char type, long size)
    {
        var (stream, records) = await ValidAsync();
        // The stream ends right after the header: reading the content first would report a truncation instead.
        var header = Header((byte)type, "ext", size, gnu: type == 'L');
        var changed = TarSurgery.Bytes(stream, records[0]).Concat(TarSurgery.Bytes(stream, records[1])).Concat(header).ToArray();

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal("ext", e.Member);
        long max = type == 'L' ? BackupStreamReader.MaxLongNameSize : BackupStreamReader.MaxPaxHeaderSize;
        Assert.Equal($"member of {size} bytes is larger than the {max} bytes allowed for it", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task Two_pax_extended_headers_for_one_member_are_refused()
    {
        var (_, changed) = await WithNvramAsync((header, content) =>
            [Entry((byte)'x', PaxName, Pax(("mtime", "1"))), Entry((byte)'x', PaxName, Pax(("mtime", "2"))), header, content]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(PaxName, e.Member);
        Assert.Equal("a second pax extended header for one member", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_pax_path_and_a_gnu_long_name_that_differ_are_refused()
    {
        var (_, changed) = await WithNvramAsync((header, content) =>
            [Entry((byte)'L', "././@LongLink", Encoding.ASCII.GetBytes("state/nvram/other.fd\0"), gnu: true), Entry((byte)'x', PaxName, Pax(("path", Nvram))), header, content]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(Nvram, e.Member);
        Assert.Equal("the pax path and the GNU long name 'state/nvram/other.fd' differ", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_pax_extended_header_followed_by_the_end_of_the_archive_is_refused()
    {
        var (stream, records) = await ValidAsync();
        var changed = TarSurgery.Join([TarSurgery.Bytes(stream, records[0]), TarSurgery.Bytes(stream, records[1]), Entry((byte)'x', PaxName, Pax(("mtime", "1")))]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal("state/nvram/*", e.Member);
        Assert.EndsWith($"follows the pax extended header '{PaxName}' instead of its member", e.Problem);
    }

    [Theory(Timeout = 10_000)]
    [InlineData(true, "tar header field 'size' is not an octal or base-256 number")]
    [InlineData(false, "a regular file with a link name")]
    public async Task A_negative_base_256_size_or_a_link_name_on_a_gnu_file_header_is_refused(bool negativeSize, string problem)
    {
        var (_, changed) = await WithNvramAsync((header, content) =>
            [Rewrite(header, gnu: true, tweak: h =>
            {
                if (negativeSize) { h.AsSpan(124, 12).Fill(0xFF); } else { Encoding.ASCII.GetBytes("/etc/shadow").CopyTo(h, 157); } }), content]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(Nvram, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_gnu_character_device_entry_is_refused()
    {
        var (_, changed) = await WithNvramAsync((header, content) => [Rewrite(header, gnu: true, tweak: h => h[156] = (byte)'3'), content]);

        var e = await StreamFixtures.RefusedAsync(changed);

        Assert.Equal(Nvram, e.Member);
        Assert.Equal("is a character device entry (type '3'); only regular files are allowed", e.Problem);
    }

    // ---- header crafting (independent of the reader) ------------------------------------------------

    /// <summary>Pax records with their lengths computed: "%d %s=%s\n", the length counting itself.</summary>
    private static byte[] Pax(params (string Key, string Value)[] records)
    {
        var sb = new StringBuilder();
        foreach (var (key, value) in records)
        {
            var body = key.Length + value.Length + 3; // space, '=', '\n'
            var length = body + 1;
            while (length != body + length.ToString().Length)
            {
                length = body + length.ToString().Length;
            }

            sb.Append($"{length} {key}={value}\n");
        }
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    private static byte[] Entry(byte type, string name, byte[] content, bool gnu = false) =>
        [.. Header(type, name, content.Length, gnu), .. content, .. new byte[(512 - content.Length % 512) % 512]];

    private static byte[] Header(byte type, string name, long size, bool gnu = false)
    {
        var header = new byte[512];
        TarHeader.Write(header, "x", Math.Min(size, TarHeader.MaxSize));
        if (size > TarHeader.MaxSize)
        {
            header.AsSpan(124, 12).Clear();
            header[124] = 0x80;
            BitConverter.GetBytes(size).Reverse().ToArray().CopyTo(header, 128);
        }
        return Rewrite(header, gnu, name, tweak: h => h[156] = type);
    }

    /// <summary>A copy of <paramref name="header"/> with another flavour, name, prefix or size, and its checksum made right.</summary>
    private static byte[] Rewrite(byte[] header, bool gnu = false, string? name = null, string? prefix = null, long? size = null, Action<byte[]>? tweak = null)
    {
        var h = (byte[])header.Clone();
        if (name is not null)
        {
            h.AsSpan(0, 100).Clear();
            Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
        }
        if (prefix is not null)
        {
            Encoding.ASCII.GetBytes(prefix).CopyTo(h, 345);
        }

        if (size is { } s)
        {
            Encoding.ASCII.GetBytes(Convert.ToString(s, 8).PadLeft(11, '0') + "\0").CopyTo(h, 124);
        }

        if (gnu)
        {
            Encoding.ASCII.GetBytes("ustar  \0").CopyTo(h, 257);
            h.AsSpan(329, 16).Clear(); // GNU leaves devmajor/devminor of a file empty
        }
        tweak?.Invoke(h);
        h.AsSpan(148, 8).Fill((byte)' ');
        Encoding.ASCII.GetBytes(Convert.ToString(TarHeader.ComputeChecksum(h), 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }
}
