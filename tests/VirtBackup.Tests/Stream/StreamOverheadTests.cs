using VirtBackup.Core.Stream;
using Xunit.Abstractions;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// What an extent costs in the stream, version 1 against version 2, on the disk of issue 14: 64 KiB extents spread over
/// 1 TiB (2,000 of its 60,000 extents over the same share of the disk; <c>VIRTBACKUP_LONG_TESTS=1</c>: all of them). The data
/// compresses to almost nothing, so the stream is nearly all overhead: headers, padding, map and trailer.
/// </summary>
public sealed class StreamOverheadTests(ITestOutputHelper output) : IDisposable
{
    private static bool Long => Environment.GetEnvironmentVariable("VIRTBACKUP_LONG_TESTS") == "1";

    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-overhead-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact(Timeout = 600_000)]
    public async Task A_version_2_stream_of_64_KiB_extents_scattered_over_1_TiB_costs_a_tenth_of_version_1_per_extent()
    {
        var count = Long ? 60_000 : 2_000;
        var disk = new ScatteredDisk(count, (1L << 40) / 60_000 / 4096 * 4096, 64 * 1024, fixedLength: true);

        var (v1Size, v1Members) = await MeasureAsync(disk, 1);
        var (v2Size, v2Members) = await MeasureAsync(disk, 2);

        output.WriteLine($"{count} extents: v1 {v1Size} bytes, {v1Members} members, {v1Size / count} bytes/extent; " +
            $"v2 {v2Size} bytes, {v2Members} members, {v2Size / count} bytes/extent");
        Assert.True(v1Members > count, $"v1: {v1Members} members");
        Assert.True(v2Members < count / 10, $"v2: {v2Members} members");
        Assert.True(v2Size * 10 < v1Size, $"v2 {v2Size} bytes, v1 {v1Size} bytes");
    }

    private async Task<(long Size, int Members)> MeasureAsync(ScatteredDisk disk, int formatVersion)
    {
        var path = Path.Combine(_dir, $"v{formatVersion}.tar");
        await using (var file = File.Create(path))
        {
            await disk.WriteStreamAsync(file, formatVersion, StreamWriterOptions.Default, constant: true);
        }

        await using var read = File.OpenRead(path);
        var summary = await new BackupStreamReader(read, ReaderOptions.ListOnly).VerifyAsync();
        return (read.Length, summary.Trailer.MemberCount);
    }
}
