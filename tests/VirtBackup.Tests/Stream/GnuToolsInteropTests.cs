using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Win32.SafeHandles;

namespace VirtBackup.Tests.Stream;

/// <summary>The stream as GNU tar, zstd and a shell see it (the tools installed on the build machine).</summary>
public sealed partial class GnuToolsInteropTests : IDisposable
{
    private const long KiB = 1024;
    private const long MiB = 1024 * KiB;
    private const long GiB = 1024 * MiB;

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
    public async Task The_documented_rebuild_recipe_rebuilds_full_and_incremental_disks_byte_exact()
    {
        // A 20 GiB disk: its map comes in two pieces, cut at 16 GiB. The raw image is sparse: it takes only what is written.
        var recipe = RebuildRecipe("rebuild-recipe");
        var image = Path.Combine(_dir, "vda.img");
        var disk = new SparseImage(20 * GiB);

        // Full backup: data at 0, zeros in the first piece, data across 16 GiB, zeros in the second piece, data at the end.
        DiskExtent[] fullMap =
        [
            new(0, MiB + 4321, false),
            new(4 * GiB, 64 * KiB, true),
            new(16 * GiB - MiB - 100, 2 * MiB + 200, false),
            new(16 * GiB + 3 * MiB, MiB, true),
            new(20 * GiB - 5000, 5000, false),
        ];
        var full = await LargeDiskStreamAsync(disk, fullMap, BackupLevel.Full, Compression.Zstd, seed: 10);
        Assert.Equal(["disks/vda/extents-0000000000000000.txt", "disks/vda/extents-0000000400000000.txt"], MapMembers(full));

        await RunRecipe(recipe, Save(full, "full.tar"), "vda", image);

        AssertImage(disk, image);

        // Incremental on top: a range rewritten in each piece, zeros across 16 GiB over the data there, the end zeroed.
        DiskExtent[] incMap =
        [
            new(4096, 70_000, false),
            new(16 * GiB - 300_000, 600_000, true),
            new(16 * GiB + 500_000, 10_000, false),
            new(20 * GiB - 2000, 2000, true),
        ];
        var inc = await LargeDiskStreamAsync(disk, incMap, BackupLevel.Inc, Compression.None, seed: 20);
        Assert.Equal(["disks/vda/extents-0000000000000000.txt", "disks/vda/extents-0000000400000000.txt"], MapMembers(inc));

        await RunRecipe(recipe, Save(inc, "inc.tar"), "vda", image);

        AssertImage(disk, image);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_documented_version_2_rebuild_recipe_rebuilds_full_and_incremental_version_2_disks_byte_exact() =>
        await RebuildFullAndIncAsync(RebuildRecipe("rebuild-recipe-v2"), 2);

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
        Assert.True(match.Success, $"docs/FORMAT.md has no {marker} block");
        return match.Groups["script"].Value;
    }

    /// <summary>
    /// A version-4 stream of one disk, vda, of <paramref name="image"/>'s size with the map <paramref name="map"/>: new
    /// content for its data extents (written into <paramref name="image"/> too, as zeros for its zero extents).
    /// </summary>
    private static async Task<byte[]> LargeDiskStreamAsync(SparseImage image, DiskExtent[] map, BackupLevel level, Compression compression, int seed)
    {
        var options = StreamFixtures.Options(compression);
        var manifest = StreamFixtures.Manifest(options, [], level: level, tpm: false, nvram: false) with
        {
            Disks = [new ManifestDisk("vda", DiskFormat.Qcow2, image.Size, false, "/var/lib/libvirt/images/vda.qcow2")],
        };
        Assert.Equal(4, manifest.FormatVersion);
        var output = new MemoryStream();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            await writer.WriteManifestAsync(manifest, CancellationToken.None);
            await writer.WriteDomainXmlAsync("<domain type='kvm'><name>win11</name></domain>\n", CancellationToken.None);
            await writer.WriteDiskMapAsync("vda", map, CancellationToken.None);
            foreach (var extent in map)
            {
                if (extent.Zero)
                {
                    image.Write(extent.Offset, new byte[extent.Length]);
                    continue;
                }

                var content = StreamFixtures.Content((int)extent.Length, seed++);
                image.Write(extent.Offset, content);
                // In pieces that end at every MiB of the disk, as a backup reads it (the writer takes none across 16 GiB).
                var position = extent.Offset;
                while (position < extent.End)
                {
                    var length = (int)(Math.Min(extent.End, (position / MiB + 1) * MiB) - position);
                    await writer.WriteDiskDataAsync("vda", position, content.AsMemory((int)(position - extent.Offset), length), CancellationToken.None);
                    position += length;
                }
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        return output.ToArray();
    }

    private static List<string> MapMembers(byte[] stream) =>
        TarSurgery.Records(stream).Select(r => r.Name).Where(name => name.Contains("/extents", StringComparison.Ordinal)).ToList();

    /// <summary>
    /// Asserts that <paramref name="file"/> holds exactly the bytes of <paramref name="expected"/>, reading only the MiB
    /// blocks either of them has data in: the rest is zeros in both (holes of the file, blocks never written). Reading a
    /// 20 GiB file whole would take half a minute.
    /// </summary>
    private static void AssertImage(SparseImage expected, string file)
    {
        using var handle = File.OpenHandle(file);
        Assert.Equal(expected.Size, RandomAccess.GetLength(handle));
        foreach (var index in DataBlocks(handle).Concat(expected.WrittenBlocks).Distinct().Order())
        {
            var bytes = expected.Block(index);
            var actual = new byte[bytes.Length];
            Assert.Equal(bytes.Length, RandomAccess.Read(handle, actual, index * SparseImage.BlockSize));
            Assert.Equal(bytes, actual);
        }
    }

    /// <summary>The <see cref="SparseImage.BlockSize"/> blocks of a file that hold data (lseek's SEEK_DATA and SEEK_HOLE); the rest are holes.</summary>
    private static IEnumerable<long> DataBlocks(SafeFileHandle handle)
    {
        const int seekData = 3, seekHole = 4, noMoreData = 6; // ENXIO
        var fd = (int)handle.DangerousGetHandle();
        long position = 0;
        while (Lseek(fd, position, seekData) is var start and >= 0)
        {
            position = Lseek(fd, start, seekHole);
            Assert.True(position > start, $"lseek(SEEK_HOLE) from {start} returned {position}");
            for (var block = start / SparseImage.BlockSize; block * SparseImage.BlockSize < position; block++)
            {
                yield return block;
            }
        }

        Assert.Equal(noMoreData, Marshal.GetLastPInvokeError());
    }

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long Lseek(int fd, long offset, int whence);

    /// <summary>A disk image kept as the 1 MiB blocks written to it, the others zeros: a 20 GiB disk costs what is written.</summary>
    private sealed class SparseImage(long size)
    {
        public const int BlockSize = (int)MiB;
        private readonly Dictionary<long, byte[]> _blocks = [];

        public long Size => size;
        public IEnumerable<long> WrittenBlocks => _blocks.Keys;

        public void Write(long offset, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var (index, at) = Math.DivRem(offset, BlockSize);
                if (!_blocks.TryGetValue(index, out var block))
                {
                    _blocks[index] = block = new byte[BlockSize];
                }

                var n = Math.Min(bytes.Length, BlockSize - (int)at);
                bytes[..n].CopyTo(block.AsSpan((int)at));
                bytes = bytes[n..];
                offset += n;
            }
        }

        /// <summary>The bytes of block <paramref name="index"/> (the last one ends where the image ends).</summary>
        public byte[] Block(long index)
        {
            var length = (int)Math.Min(BlockSize, size - index * BlockSize);
            return _blocks.TryGetValue(index, out var block) ? block[..length] : new byte[length];
        }
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
