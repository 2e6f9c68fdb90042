using System.Diagnostics;
using VirtBackup.Core.Stream;
using Xunit.Abstractions;

namespace VirtBackup.Tests.Stream;

/// <summary>Formats 2 and 3 with 120,000 small scattered extents: written, read, verified, listed and restored exactly.</summary>
public sealed class StreamAtScaleTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-scale-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory(Timeout = 120_000)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_stream_of_120000_scattered_extents_is_written_read_verified_listed_and_restored_byte_exact(int formatVersion)
    {
        // 120,000 data extents of 256 to 1024 bytes, one per MiB (117 GiB, 469 windows), plus 24,000 zero extents.
        var disk = new ScatteredDisk(120_000, 1024 * 1024, 1024);
        var path = Path.Combine(_dir, "scattered.tar");
        var clock = Stopwatch.StartNew();
        await using (var file = File.Create(path))
        {
            await disk.WriteStreamAsync(file, formatVersion, StreamWriterOptions.Default);
        }

        var written = clock.Elapsed;
        var checker = new ScatteredDisk.Checker(disk);
        var dataMembers = 0;
        var mapExtents = 0;
        var mapMembers = 0;
        await using (var file = File.OpenRead(path))
        {
            await foreach (var member in new BackupStreamReader(file).ReadAsync())
            {
                switch (member)
                {
                    case DiskMapMember m:
                        mapExtents += m.Map.Extents.Count;
                        mapMembers++;
                        break;
                    case DiskDataMember data:
                        dataMembers++;
                        foreach (var s in data.Segments)
                        {
                            checker.Write(s.DiskOffset, data.Data.Span.Slice(s.ContentOffset, s.Length));
                        }

                        break;
                }
            }
        }

        checker.AssertComplete();
        var restored = clock.Elapsed;
        StreamSummary summary;
        await using (var file = File.OpenRead(path))
        {
            summary = await new BackupStreamReader(new UnseekableStream(file)).VerifyAsync();
        }

        await using (var file = File.OpenRead(path))
        {
            await new BackupStreamReader(file, ReaderOptions.ListOnly).VerifyAsync();
        }

        var size = new FileInfo(path).Length;
        output.WriteLine($"{size} bytes, {dataMembers} data members; write {written.TotalSeconds:F1} s, read+check {(restored - written).TotalSeconds:F1} s, verify+list {(clock.Elapsed - restored).TotalSeconds:F1} s");
        // Version 3: the map in 8 pieces of 16 GiB; no extent crosses a piece boundary here.
        Assert.Equal((144_000, formatVersion == 3 ? 8 : 1), (mapExtents, mapMembers));
        Assert.Equal(disk.Extents().Where(e => !e.Zero).Sum(e => e.Length), checker.Bytes);
        // One member per window holding data (each window's 256 extents of at most 1 KiB fit one 4 MiB member).
        Assert.Equal(469, dataMembers);
        Assert.Equal(dataMembers + mapMembers + 2, summary.Trailer.MemberCount);
        Assert.Equal(formatVersion, summary.Manifest.FormatVersion);
    }
}
