using VirtBackup.Core.Backup;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;
using Xunit.Abstractions;

namespace VirtBackup.Tests.Stream;

/// <summary>Runs alone: its measurements read the process's heap, which tests running beside it would disturb.</summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>
/// Memory flat in extent count (issue 14): what writing and reading a version-2 stream keeps per extent of its map is
/// one compact array, measured on the managed heap for 50,000 and 500,000 scattered extents.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class StreamMemoryTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-memory-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact(Timeout = 120_000)]
    public async Task Writing_or_reading_600000_extents_instead_of_60000_holds_at_most_40_bytes_more_per_extent()
    {
        var small = await MeasureAsync(50_000);
        var large = await MeasureAsync(500_000);
        var extents = large.Extents - small.Extents;
        var write = Footprint.PerExtent(large.Write, small.Write, extents);
        var read = Footprint.PerExtent(large.Read, small.Read, extents);
        output.WriteLine($"map extents {small.Extents} -> {large.Extents}");
        output.WriteLine($"write: held {small.Write.Held / 1024} KiB -> {large.Write.Held / 1024} KiB, allocated {small.Write.Allocated / 1024} KiB -> {large.Write.Allocated / 1024} KiB; per extent held {write.Held} B, allocated {write.Allocated} B");
        output.WriteLine($"read:  held {small.Read.Held / 1024} KiB -> {large.Read.Held / 1024} KiB, allocated {small.Read.Allocated / 1024} KiB -> {large.Read.Allocated / 1024} KiB; per extent held {read.Held} B, allocated {read.Allocated} B");
        // One ExtentList (2 to 5 bytes an extent) per side. The reader holds 4 B (three runs): a List<DiskExtent> beside
        // its list (24 B more) fails its bound. The writer's figure swings with its buffer pools (12-20 B), so its bound
        // of 40 catches a second list only at the pools' high end.
        Assert.InRange(write.Held, long.MinValue, 40);
        Assert.InRange(read.Held, long.MinValue, 16);
        // Garbage too: the map's text as a string or whole array (tens of bytes an extent) would pass these.
        Assert.InRange(write.Allocated, long.MinValue, 300);
        Assert.InRange(read.Allocated, long.MinValue, 100);
    }

    private async Task<(int Extents, Footprint Write, Footprint Read)> MeasureAsync(int count)
    {
        // What a writer or reader leaves behind on the pool's threads for a while is a small one's before each measure.
        if (count > 5_000)
        {
            await MeasureAsync(5_000);
        }

        // 256-byte data extents 64 KiB apart (4,096 per 256 MiB window), each fifth followed by a zero extent.
        var disk = new ScatteredDisk(count, 64 * 1024, 256, fixedLength: true);
        var path = Path.Combine(_dir, $"scattered-{count}.tar");
        var options = StreamWriterOptions.Uncompressed(4 * 1024 * 1024);
        var extents = 0;
        var write = await Footprint.MeasureAsync(async sample =>
        {
            var plan = ExtentPlan.Full(disk.Extents().Select(e => new NbdExtent(e.Offset, e.Length, e.Zero ? 3u : 0u)));
            extents = plan.Count;
            await using var file = File.Create(path);
            await disk.WriteStreamAsync(file, 2, options, plan, sample, constant: true);
        });
        if (count > 5_000)
        {
            await MeasureAsync(5_000);
        }

        var read = await Footprint.MeasureAsync(async sample =>
        {
            await using var file = File.OpenRead(path);
            DiskMapMember? map = null;
            var halfway = false;
            await foreach (var member in new BackupStreamReader(file).ReadAsync())
            {
                if (member is DiskMapMember m)
                {
                    map = m;
                    sample();
                }
                else if (member is DiskDataMember data && !halfway && data.Offset >= disk.VirtualSize / 2)
                {
                    halfway = true;
                    sample();
                }
            }

            Assert.Equal(extents, map!.Map.Extents.Count);
        });
        return (extents, write, read);
    }

    /// <summary>
    /// A piece of work's heap: <see cref="Held"/> the most live at its samples (after full collections, so garbage is
    /// not counted; what the work before it left on the pool's threads is, alike for every size), <see cref="Allocated"/>
    /// everything it allocated, garbage included.
    /// </summary>
    private sealed record Footprint(long Held, long Allocated)
    {
        public static async Task<Footprint> MeasureAsync(Func<Action, Task> work)
        {
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            long peak = 0;
            await work(() => peak = Math.Max(peak, Retained()));
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            return new Footprint(peak, allocated);
        }

        public static Footprint PerExtent(Footprint large, Footprint small, int extents) =>
            new((large.Held - small.Held) / extents, (large.Allocated - small.Allocated) / extents);

        private static long Retained()
        {
            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            return GC.GetTotalMemory(forceFullCollection: false);
        }
    }
}
