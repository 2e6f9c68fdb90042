using VirtBackup.Core.Recovery;
using VirtBackup.Core.Stream;
using VirtBackup.Tests.Stream;

namespace VirtBackup.Tests.Recovery;

/// <summary>A stream file of format 3 opened for serving and consolidating: its map pieces joined into the disk's map.</summary>
public sealed class StreamFilePieceTests : IDisposable
{
    private const long Gi = 1024L * 1024 * 1024;

    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-pieces-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory(Timeout = 30_000)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task The_map_of_a_disk_is_its_pieces_joined_and_the_data_members_are_found_between_them(int formatVersion)
    {
        // 64 KiB extents every 8 GiB - 16 KiB of a 40 GiB disk: the third crosses the 16 GiB piece boundary, the fifth 32 GiB.
        var disk = new ScatteredDisk(5, 8 * Gi - 16 * 1024, 64 * 1024, fixedLength: true);
        var path = Path.Combine(_dir, $"v{formatVersion}.tar");
        await using (var file = File.Create(path))
        {
            await disk.WriteStreamAsync(file, formatVersion, StreamWriterOptions.Default);
        }

        using var stream = StreamFile.Open(path);
        var opened = stream.Disks[ScatteredDisk.Target];
        var members = stream.DataMembers(opened);

        Assert.Equal(disk.Extents(), opened.Map.Extents);
        // Every extent but the first crosses a 256 MiB window boundary (8, 16, 24 and 32 GiB): a member on each side.
        Assert.Equal(
            [0L, 8 * Gi - 12288, 8 * Gi, 16 * Gi - 24576, 16 * Gi, 24 * Gi - 36864, 24 * Gi, 32 * Gi - 49152, 32 * Gi],
            members.Select(m => m.DiskOffset));
        Assert.Equal(disk.Extents().Where(e => !e.Zero).Sum(e => e.Length), members.Sum(m => m.Segments.Sum(s => (long)s.Length)));
    }
}
