using System.Diagnostics;
using System.Text.Json;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// A disk of several version-3 map pieces (one per 16 GiB of its address space) on a real running VM: a sparse 40 GiB
/// qcow2 disk with data in each of its three pieces and across the first boundary. The full backup writes each piece
/// right before the data members of its range; restoring it, and then an incremental of writes on both sides of the
/// boundary, gives the source's guest-visible content exactly (qemu-img compare), as sparse as the source.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class MapPieceBackupTests(ITestOutputHelper output) : IDisposable
{
    private const long K = 1024;
    private const long M = 1024 * K;
    private const long G = 1024 * M;
    private const long Boundary = 16 * G; // StreamRules.MapPieceSize: the first piece boundary

    private readonly string _work = Directory.CreateTempSubdirectory("vbt-pieces-").FullName;

    [Fact(Timeout = 180_000)]
    public async Task A_40_GiB_disk_backs_up_in_three_map_pieces_each_before_its_data_and_its_full_and_an_incremental_across_the_boundary_restore_to_the_source_exactly()
    {
        var clock = Stopwatch.StartNew();
        await using var vm = await LabVm.CreateAsync(diskSize: "40G");
        var restoredName = $"{vm.Name}-r";
        var restored = Path.Join(_work, "root", LabVm.ImagesDirectory, $"{restoredName}-vda.qcow2");
        Assert.Equal(40 * G, vm.DiskSizeBytes);
        // Piece 0: 1 MiB at 0; 128 KiB across 16 GiB (half in piece 0, half in piece 1); piece 1: 1 MiB at 20 GiB with 256 KiB
        // of zeros written over its middle; piece 2: 1 MiB at 39 GiB.
        await WriteAsync(vm, 0, M, "random");
        await WriteAsync(vm, Boundary - (64 * K), 128 * K, "0x22");
        await WriteAsync(vm, 20 * G, M, "0x33");
        await WriteAsync(vm, (20 * G) + (256 * K), 256 * K, "zero");
        await WriteAsync(vm, 39 * G, M, "0x44");
        output.WriteLine($"vm created and written: {clock.Elapsed.TotalSeconds:F1} s");

        var full = await BackupAsync(vm, "full");
        output.WriteLine($"full backup ({full.Bytes.Length} bytes): {clock.Elapsed.TotalSeconds:F1} s");

        Assert.Equal((4, BackupLevel.Full, 40 * G), (full.Manifest.FormatVersion, full.Manifest.Level, full.Manifest.Disks.Single().VirtualSize));
        Assert.Equal(
            [
                "disks/vda/extents-0000000000000000.txt",
                "disks/vda/0000000000000000.zst",
                "disks/vda/00000003ffff0000.zst",
                "disks/vda/extents-0000000400000000.txt",
                "disks/vda/0000000400000000.zst",
                "disks/vda/0000000500000000.zst",
                "disks/vda/extents-0000000800000000.txt",
                "disks/vda/00000009c0000000.zst",
            ],
            full.DiskMembers);
        Assert.Equal([0, Boundary, 2 * Boundary], full.PieceOffsets);
        Assert.Equal(
            [
                [Data(0, M), Zero(M, Boundary - (64 * K) - M), Data(Boundary - (64 * K), 64 * K)],
                [Data(Boundary, 64 * K), Zero(Boundary + (64 * K), (4 * G) - (64 * K)), Data(20 * G, 256 * K), Zero((20 * G) + (256 * K), 256 * K),
                    Data((20 * G) + (512 * K), 512 * K), Zero((20 * G) + M, (12 * G) - M)],
                [Zero(2 * Boundary, 7 * G), Data(39 * G, M), Zero((39 * G) + M, G - M)],
            ],
            full.Pieces);
        Assert.Equal([0L, Boundary - (64 * K), Boundary, 20 * G, (20 * G) + (512 * K), 39 * G], full.Data.Keys);
        AssertFilled(full, Boundary - (64 * K), 64 * K, 0x22);
        AssertFilled(full, Boundary, 64 * K, 0x22);
        AssertFilled(full, 20 * G, 256 * K, 0x33);
        AssertFilled(full, (20 * G) + (512 * K), 512 * K, 0x33);
        AssertFilled(full, 39 * G, M, 0x44);
        Assert.Equal(M, full.Data[0].Length);

        var fullRestore = await RestoreAsync(full, restoredName);
        output.WriteLine($"full restored: {clock.Elapsed.TotalSeconds:F1} s");

        Assert.True(fullRestore.ExitCode == 0, $"restore of the full exited {fullRestore.ExitCode}: {fullRestore.StandardError}");
        Assert.Equal("0 Images are identical.", await CompareAsync(restored, vm.DiskPath("vda")));
        // As sparse as the source: data clusters only where the source has them (its zeroed range reads as zeros in both).
        IReadOnlyList<(long, long)> dataRanges = [(0, M), (Boundary - (64 * K), 128 * K), (20 * G, 256 * K), ((20 * G) + (512 * K), 512 * K), (39 * G, M)];
        Assert.Equal(dataRanges, await DataRangesAsync(vm.DiskPath("vda")));
        Assert.Equal(dataRanges, await DataRangesAsync(restored));

        // Changes on both sides of the boundary (one dirty range across it), zeros over data in piece 1, none in piece 2.
        await WriteAsync(vm, Boundary - M, M, "0x55");
        await WriteAsync(vm, Boundary, 512 * K, "random");
        await WriteAsync(vm, 20 * G, 64 * K, "zero");
        var inc = await BackupAsync(vm, "inc");
        output.WriteLine($"incremental backup ({inc.Bytes.Length} bytes): {clock.Elapsed.TotalSeconds:F1} s");

        Assert.Equal((4, BackupLevel.Inc, full.Manifest.Checkpoint), (inc.Manifest.FormatVersion, inc.Manifest.Level, inc.Manifest.ParentCheckpoint));
        Assert.Equal(
            [
                "disks/vda/extents-0000000000000000.txt",
                "disks/vda/00000003fff00000.zst",
                "disks/vda/extents-0000000400000000.txt",
                "disks/vda/0000000400000000.zst",
                "disks/vda/extents-0000000800000000.txt",
            ],
            inc.DiskMembers);
        Assert.Equal([0, Boundary, 2 * Boundary], inc.PieceOffsets);
        Assert.Equal([[Data(Boundary - M, M)], [Data(Boundary, 512 * K), Zero(20 * G, 64 * K)], []], inc.Pieces);
        Assert.Equal([Boundary - M, Boundary], inc.Data.Keys);
        AssertFilled(inc, Boundary - M, M, 0x55);
        Assert.Equal(512 * K, inc.Data[Boundary].Length);

        var incRestore = await RestoreAsync(inc, restoredName);
        output.WriteLine($"incremental restored: {clock.Elapsed.TotalSeconds:F1} s");

        Assert.True(incRestore.ExitCode == 0, $"restore of the incremental exited {incRestore.ExitCode}: {incRestore.StandardError}");
        Assert.Equal("0 Images are identical.", await CompareAsync(restored, vm.DiskPath("vda")));
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static DiskExtent Data(long offset, long length) => new(offset, length, false);

    private static DiskExtent Zero(long offset, long length) => new(offset, length, true);

    /// <summary>A guest-like write into the running VM (domain.sh write), offsets and lengths in bytes.</summary>
    private static Task WriteAsync(LabVm vm, long offset, long length, string pattern) =>
        vm.InjectWriteAsync("vda", offset.ToString(System.Globalization.CultureInfo.InvariantCulture),
            length.ToString(System.Globalization.CultureInfo.InvariantCulture), pattern);

    private static void AssertFilled(PieceStream stream, long offset, long length, byte pattern)
    {
        var data = stream.Data[offset];
        Assert.True(data.Length == length && data.All(b => b == pattern), $"the data at {offset} is not {length} bytes of 0x{pattern:x2}");
    }

    private async Task<PieceStream> BackupAsync(LabVm vm, string level)
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", vm.Name, "--level", level, "--state-dir", Path.Combine(_work, "state")]);
        Assert.True(result.ExitCode == 0, $"backup --level {level} exited {result.ExitCode}: {result.StandardError}");
        return await PieceStream.ReadAsync(result.StandardOutput);
    }

    private Task<CliResult> RestoreAsync(PieceStream stream, string name) =>
        VirtBackupCli.RunAsync(["restore", "--as", name, "--target-root", Path.Combine(_work, "root")], new MemoryStream(stream.Bytes));

    /// <summary>qemu-img compare (guest-visible content, exact): its exit code and what it printed.</summary>
    private static async Task<string> CompareAsync(string a, string b)
    {
        var result = await Cli.Wrap("qemu-img").WithArguments(["compare", "-U", "-f", "qcow2", "-F", "qcow2", a, b])
            .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        return $"{result.ExitCode} {result.StandardOutput.Trim()}{result.StandardError.Trim()}";
    }

    /// <summary>The ranges <c>qemu-img map</c> reports as data, adjacent ones joined.</summary>
    private static async Task<IReadOnlyList<(long, long)>> DataRangesAsync(string image)
    {
        using var map = JsonDocument.Parse(await LabHost.RunAsync("qemu-img", ["map", "-U", "-f", "qcow2", "--output=json", image]));
        var ranges = new List<(long Offset, long Length)>();
        foreach (var entry in map.RootElement.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean()))
        {
            var (start, length) = (entry.GetProperty("start").GetInt64(), entry.GetProperty("length").GetInt64());
            if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == start)
            {
                ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + length);
            }
            else
            {
                ranges.Add((start, length));
            }
        }

        return ranges;
    }

    /// <summary>
    /// A stream read by our validating reader, keeping every map piece (<see cref="ParsedStream"/> keeps one map per disk):
    /// the names of vda's members in stream order, each piece's offset and extents, and the data by disk offset.
    /// </summary>
    private sealed class PieceStream
    {
        private PieceStream(byte[] bytes) => Bytes = bytes;

        public byte[] Bytes { get; }

        public Manifest Manifest { get; private set; } = null!;

        public List<string> DiskMembers { get; } = [];

        public List<long> PieceOffsets { get; } = [];

        public List<DiskExtent[]> Pieces { get; } = [];

        public SortedDictionary<long, byte[]> Data { get; } = [];

        public static async Task<PieceStream> ReadAsync(byte[] bytes)
        {
            var parsed = new PieceStream(bytes);
            await foreach (var member in new BackupStreamReader(new MemoryStream(bytes)).ReadAsync())
            {
                switch (member)
                {
                    case ManifestMember m:
                        parsed.Manifest = m.Manifest;
                        break;
                    case DiskMapMember map:
                        parsed.DiskMembers.Add(map.Name);
                        parsed.PieceOffsets.Add(map.PieceOffset);
                        parsed.Pieces.Add(map.Map.Extents.ToArray());
                        break;
                    case DiskDataMember d:
                        parsed.DiskMembers.Add(d.Name);
                        foreach (var s in d.Segments)
                        {
                            parsed.Data[s.DiskOffset] = d.Data.Slice(s.ContentOffset, s.Length).ToArray();
                        }

                        break;
                }
            }

            return parsed;
        }
    }
}
