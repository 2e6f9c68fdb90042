using System.Text.RegularExpressions;

namespace VirtBackup.Tests.Stream;

/// <summary>The stream as GNU tar, zstd and a shell see it (the tools installed on the build machine).</summary>
public sealed class GnuToolsInteropTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-stream-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact(Timeout = 30_000)]
    public async Task Gnu_tar_lists_exactly_the_expected_members_in_order_as_rw_for_root_only()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var file = Save(backup.Stream);

        var listing = await Run("tar", ["-tvf", file]);

        var lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var expectedNames = (await StreamFixtures.ReadAllAsync(backup.Stream)).Select(m => m.Name).ToList();
        Assert.Equal(expectedNames, lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]));
        Assert.All(lines, l => Assert.Matches(@"^-rw------- root/root +\d+ 1970-01-01 00:00 \S+$", l));
        Assert.Contains(lines, l => Regex.IsMatch(l, @" 540672 1970-01-01 00:00 state/nvram/win11_VARS\.fd$"));
    }

    [Fact(Timeout = 30_000)]
    public async Task Gnu_tar_extracts_nvram_and_tpm_files_byte_exact()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);

        var outDir = await ExtractAsync(backup.Stream);

        Assert.Equal(backup.Nvram, File.ReadAllBytes(Path.Combine(outDir, "state/nvram/win11_VARS.fd")));
        foreach (var (path, content) in backup.TpmFiles)
        {
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(outDir, "state/tpm", path)));
        }

        Assert.Equal(backup.DomainXml, File.ReadAllText(Path.Combine(outDir, "virtbackup/domain.xml")));
    }

    [Fact(Timeout = 30_000)]
    public async Task Zstd_tests_and_decodes_an_extracted_member_to_the_exact_disk_bytes_and_the_frame_has_a_checksum()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var outDir = await ExtractAsync(backup.Stream);
        var member = Path.Combine(outDir, "disks/vda/0000000000040064.zst");

        await Run("zstd", ["-q", "-t", member]);
        var info = await Run("zstd", ["-lv", member]);
        await Run("zstd", ["-q", "-d", member, "-o", Path.Combine(_dir, "piece")]);

        Assert.Matches(@"Check: XXH64", info);
        Assert.Matches(@"Decompressed Size: .*\(65436 B\)", info);
        var vda = backup.Disks[0];
        Assert.Equal(vda.Image.AsSpan(0x40064, 65436).ToArray(), File.ReadAllBytes(Path.Combine(_dir, "piece")));
    }

    [Fact(Timeout = 60_000)]
    public async Task The_documented_rebuild_recipe_rebuilds_full_and_incremental_disks_byte_exact() =>
        await RebuildFullAndIncAsync(RebuildRecipe("rebuild-recipe"), Manifest.CurrentFormatVersion);

    [Fact(Timeout = 60_000)]
    public async Task The_documented_version_1_rebuild_recipe_rebuilds_full_and_incremental_version_1_disks_byte_exact() =>
        await RebuildFullAndIncAsync(RebuildRecipe("rebuild-recipe-v1"), 1);

    private async Task RebuildFullAndIncAsync(string recipe, int formatVersion)
    {
        // Full backup: vda of the standard fixture.
        var full = await StreamFixtures.BuildAsync(Compression.Zstd, formatVersion: formatVersion);
        var vda = full.Disks[0];
        var image = Path.Combine(_dir, "vda.img");

        await RunRecipe(recipe, Save(full.Stream, "full.tar"), "vda", image);

        Assert.Equal(vda.Image, File.ReadAllBytes(image));

        // Incremental on top: some ranges rewritten, one range zeroed, the rest unchanged.
        var changed = (byte[])vda.Image.Clone();
        DiskExtent[] incMap =
        [
            new(4096, 70_000, false),
            new(100_000, 40_000, true),
            new(600_000, 1000, false),
        ];
        var fresh = StreamFixtures.Content(70_000, 99);
        fresh.CopyTo(changed, 4096);
        changed.AsSpan(100_000, 40_000).Clear();
        StreamFixtures.Content(1000, 98).CopyTo(changed, 600_000);
        var incDisk = new SyntheticDisk("vda", changed, incMap);
        var inc = await StreamFixtures.BuildAsync(Compression.None, disks: [incDisk], level: BackupLevel.Inc, formatVersion: formatVersion);

        await RunRecipe(recipe, Save(inc.Stream, "inc.tar"), "vda", image);

        Assert.Equal(changed, File.ReadAllBytes(image));
    }

    /// <summary>The bash block between the <paramref name="marker"/> markers of docs/FORMAT.md, verbatim.</summary>
    private static string RebuildRecipe(string marker)
    {
        var doc = File.ReadAllText(Path.Combine(RepositoryCheckout.Root, "docs", "FORMAT.md"));
        var match = Regex.Match(doc, $@"<!-- {marker}:begin -->\s*```bash\n(?<script>.*?)```\s*<!-- {marker}:end -->", RegexOptions.Singleline);
        Assert.True(match.Success, "docs/FORMAT.md has no rebuild recipe block");
        return match.Groups["script"].Value;
    }

    private static async Task RunRecipe(string recipe, string stream, string target, string image)
    {
        var result = await Cli.Wrap("bash")
            .WithArguments(["-c", recipe])
            .WithEnvironmentVariables(e => e.Set("STREAM", stream).Set("TARGET", target).Set("IMAGE", image))
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync();
        Assert.True(result.ExitCode == 0, $"recipe failed ({result.ExitCode}): {result.StandardError}");
        Assert.Equal("", result.StandardError);
    }

    /// <summary>Extracts <paramref name="stream"/> with GNU tar into a new directory and returns that directory.</summary>
    private async Task<string> ExtractAsync(byte[] stream)
    {
        var file = Save(stream);
        var outDir = Directory.CreateDirectory(Path.Combine(_dir, "x")).FullName;
        await Run("tar", ["-xf", file, "-C", outDir]);
        return outDir;
    }

    private string Save(byte[] bytes, string name = "backup.tar")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static async Task<string> Run(string tool, string[] args)
    {
        var result = await Cli.Wrap(tool).WithArguments(args).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        Assert.True(result.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed ({result.ExitCode}): {result.StandardError}");
        return result.StandardOutput + result.StandardError;
    }
}
