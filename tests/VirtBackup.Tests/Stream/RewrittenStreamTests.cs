using System.Security.Cryptography;
using System.Text;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// Streams another tar tool rewrote (GNU tar unpack and repack in every format, borg 1.2 import-tar/export-tar):
/// other header flavours and metadata, the same members in the same order, accepted because the trailer proves
/// them; any change to what the trailer proves, and links, devices, directories and extra members, refused.
/// </summary>
public sealed class RewrittenStreamTests : IDisposable
{
    private readonly Repack _repack = new();

    public void Dispose() => _repack.Dispose();

    [Theory(Timeout = 60_000)]
    [InlineData("gnu", false)]
    [InlineData("oldgnu", false)]
    [InlineData("pax", false)]
    [InlineData("posix", false)]
    [InlineData("ustar", false)]
    [InlineData("gnu", true)]
    [InlineData("pax", true)]
    [InlineData("ustar", true)]
    public async Task A_gnu_tar_repack_reads_back_the_same_members_with_the_same_content(string format, bool otherMetadata)
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        string[] metadata = otherMetadata ? ["--owner=1234", "--group=5678", "--mode=0644", "--mtime=@1700000000"] : [];

        var repacked = await _repack.GnuTarAsync(original, format, metadata);

        Assert.Equal(format is "gnu" or "oldgnu" ? "ustar  \0" : "ustar\u000000", Encoding.ASCII.GetString(repacked, 257, 8));
        Assert.Equal(format is "pax" or "posix" ? (byte)'x' : (byte)'0', repacked[156]);
        Assert.Equal(await FingerprintAsync(original), await FingerprintAsync(repacked));
        Assert.Equal(await FingerprintAsync(original, ReaderOptions.ListOnly), await FingerprintAsync(repacked, ReaderOptions.ListOnly));
    }

    [Fact(Timeout = 120_000)]
    public async Task A_borg_import_tar_then_export_tar_round_trip_reads_back_the_same_members_with_the_same_content()
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;

        var exported = await _repack.BorgAsync(original);

        Assert.Equal("ustar  \0", Encoding.ASCII.GetString(exported, 257, 8));
        Assert.NotEqual(original.Length, exported.Length);
        Assert.Equal(await FingerprintAsync(original), await FingerprintAsync(exported));
    }

    [Theory(Timeout = 180_000)]
    [InlineData("gnu")]
    [InlineData("pax")]
    [InlineData("ustar")]
    [InlineData("borg")]
    public async Task A_rewritten_stream_restores_byte_equal_to_the_original(string tool)
    {
        var spec = ChainFixtures.Full();
        var original = await ChainFixtures.BuildAsync(spec);
        var rewritten = tool == "borg" ? await _repack.BorgAsync(original) : await _repack.GnuTarAsync(original, tool, ["--mtime=@1700000000"]);
        using var expected = new RestoredTree();
        using var actual = new RestoredTree();

        await expected.RestoreAsync(original);
        await actual.RestoreAsync(rewritten);

        Assert.Equal(ChainFixtures.Image(spec, "vda"), await File.ReadAllBytesAsync(actual.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(spec, "vdb"), await File.ReadAllBytesAsync(actual.Disk("vdb")));
        Assert.Equal(spec.Nvram, await File.ReadAllBytesAsync(actual.Nvram()));
        // Every file, mode and byte, but the chain position, which records when the restore ran.
        Assert.Equal(WithoutChainPosition(expected), WithoutChainPosition(actual));
        Assert.Equal(await File.ReadAllBytesAsync(expected.Definition()), await File.ReadAllBytesAsync(actual.Definition()));
    }

    private static SortedDictionary<string, string> WithoutChainPosition(RestoredTree tree)
    {
        var snapshot = tree.Snapshot();
        Assert.True(snapshot.Remove(Path.GetRelativePath(tree.Root, tree.ChainPosition())));
        return snapshot;
    }

    [Fact(Timeout = 60_000)]
    public async Task An_oldgnu_repack_of_a_100_byte_name_writes_a_gnu_long_name_entry_and_reads_back()
    {
        var longPath = "tpm2/" + new string('p', 85); // state/tpm/ + 90 bytes = 100 bytes, the longest name
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd, tpmFiles: [(longPath, StreamFixtures.Content(700, 3))])).Stream;

        var repacked = await _repack.GnuTarAsync(original, "oldgnu");

        Assert.Contains("././@LongLink", Encoding.ASCII.GetString(repacked));
        Assert.Equal(await FingerprintAsync(original), await FingerprintAsync(repacked));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("gnu", "state/nvram/win11_VARS.fd")]
    [InlineData("pax", "state/tpm/tpm2/tpm2-00.permall")]
    [InlineData("ustar", "virtbackup/domain.xml")]
    public async Task A_repack_with_one_changed_content_byte_is_refused_naming_the_member(string format, string member)
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var repacked = await _repack.GnuTarAsync(original, format, change: (dir, _) =>
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir, member));
            bytes[bytes.Length / 2] = (byte)(bytes[bytes.Length / 2] == (byte)'a' ? 'b' : 'a');
            File.WriteAllBytes(Path.Combine(dir, member), bytes);
        });

        var e = await StreamFixtures.RefusedAsync(repacked);

        Assert.Equal(member, e.Member);
        Assert.Matches("^SHA-256 of the content is [0-9a-f]{64}, the trailer says [0-9a-f]{64}: the member is corrupt$", e.Problem);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_repack_with_one_changed_byte_in_a_zstd_data_member_is_refused_naming_the_member()
    {
        const string member = "disks/vda/0000000000010000.zst";
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var repacked = await _repack.GnuTarAsync(original, "gnu", change: (dir, _) =>
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir, member));
            bytes[bytes.Length / 2] ^= 0x10;
            File.WriteAllBytes(Path.Combine(dir, member), bytes);
        });

        var e = await StreamFixtures.RefusedAsync(repacked);

        Assert.Equal(member, e.Member);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_repack_in_another_member_order_is_refused()
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var repacked = await _repack.GnuTarAsync(original, "gnu", change: (_, names) => names.Sort(StringComparer.Ordinal));

        var e = await StreamFixtures.RefusedAsync(repacked);

        Assert.Equal("disks/vda/0000000000000000.zst", e.Member);
        Assert.Equal("disk data before the map of disk 'vda' (data must follow its own disk's map)", e.Problem);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("symlink", "state/tpm/tpm2/tpm2-00.volatilestate", "is a symbolic link entry (type '2'); only regular files are allowed")]
    [InlineData("hardlink", "state/tpm/tpm2/tpm2-00.volatilestate", "is a hard link entry (type '1'); only regular files are allowed")]
    [InlineData("fifo", "state/tpm/tpm2/tpm2-00.volatilestate", "is a fifo entry (type '6'); only regular files are allowed")]
    [InlineData("directory", "state/", "is a directory entry (type '5'); only regular files are allowed")]
    public async Task A_repack_holding_a_link_a_device_or_a_directory_is_refused(string kind, string member, string problem)
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var repacked = await _repack.GnuTarAsync(original, "gnu", change: (dir, names) =>
        {
            var path = Path.Combine(dir, "state/tpm/tpm2/tpm2-00.volatilestate");
            var permall = Path.Combine(dir, "state/tpm/tpm2/tpm2-00.permall");
            switch (kind)
            {
                case "symlink":
                    File.Delete(path);
                    File.CreateSymbolicLink(path, "tpm2-00.permall");
                    break;
                case "hardlink":
                    File.Delete(path);
                    Run("ln", permall, path);
                    break;
                case "fifo":
                    File.Delete(path);
                    Run("mkfifo", "-m", "600", path);
                    break;
                default:
                    names.Insert(names.IndexOf("state/nvram/win11_VARS.fd"), "state");
                    break;
            }
        });

        var e = await StreamFixtures.RefusedAsync(repacked);

        Assert.Equal(member, e.Member);
        Assert.Equal(problem, e.Problem);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_repack_with_an_unexpected_member_is_refused_naming_it()
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var repacked = await _repack.GnuTarAsync(original, "pax", change: (dir, names) =>
        {
            File.WriteAllText(Path.Combine(dir, "virtbackup/notes.txt"), "hello\n");
            names.Insert(names.Count - 1, "virtbackup/notes.txt");
        });

        var e = await StreamFixtures.RefusedAsync(repacked);

        Assert.Equal("virtbackup/notes.txt", e.Member);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_v7_repack_without_a_ustar_magic_is_refused()
    {
        var original = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;

        var e = await StreamFixtures.RefusedAsync(await _repack.GnuTarAsync(original, "v7"));

        Assert.Equal("virtbackup/manifest.json", e.Member);
        Assert.Equal("not a ustar, GNU or pax tar header (unknown magic)", e.Problem);
    }

    [Theory(Timeout = 120_000)]
    [InlineData("gnu")]
    [InlineData("pax")]
    [InlineData("borg")]
    public async Task The_cli_verifies_and_lists_a_rewritten_stream_from_stdin_with_exit_code_0(string tool)
    {
        var original = await ChainFixtures.BuildAsync(ChainFixtures.Small());
        var rewritten = tool == "borg" ? await _repack.BorgAsync(original) : await _repack.GnuTarAsync(original, tool);

        var verify = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(rewritten));
        var list = await VirtBackupCli.RunAsync(["list"], new MemoryStream(rewritten));
        var listOriginal = await VirtBackupCli.RunAsync(["list"], new MemoryStream(original));

        Assert.True(verify.ExitCode == 0, verify.StandardError);
        Assert.Equal(0, list.ExitCode);
        Assert.Equal(listOriginal.StandardOutput, list.StandardOutput);
    }

    /// <summary>What the trailer proves and the reader yields: every member's name, sizes and content hash, in order.</summary>
    internal static async Task<List<string>> FingerprintAsync(byte[] stream, ReaderOptions? options = null)
    {
        var lines = new List<string>();
        var reader = new BackupStreamReader(new UnseekableStream(new MemoryStream(stream, writable: false)), options);
        await foreach (var m in reader.ReadAsync())
        {
            var content = m switch
            {
                ManifestMember manifest => manifest.Sha256,
                DomainXmlMember xml => Hash(Encoding.UTF8.GetBytes(xml.Xml)),
                NvramMember nvram => Hash(nvram.Content.Span),
                TpmFileMember tpm => Hash(tpm.Content.Span),
                DiskMapMember map => $"{map.Map.Extents.Count} extents",
                DiskDataMember data => $"{data.Target}@{data.Offset} {Hash(data.Data.Span)}",
                TrailerMember trailer => string.Join(",", trailer.Trailer.Members.Select(e => $"{e.Name}:{e.StoredSha256}:{e.Sha256}")),
                _ => "?",
            };
            lines.Add($"{m.Name} {m.StoredSize} {m.Size} {content}");
        }
        return lines;
    }

    private static string Hash(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static void Run(string tool, params string[] args)
    {
        using var process = System.Diagnostics.Process.Start(tool, args);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
