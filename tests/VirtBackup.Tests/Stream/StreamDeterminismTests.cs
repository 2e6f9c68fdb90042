namespace VirtBackup.Tests.Stream;

public class StreamDeterminismTests
{
    [Theory(Timeout = 30_000)]
    [InlineData(Compression.Zstd)]
    [InlineData(Compression.None)]
    public async Task Two_backups_of_the_same_disks_with_different_manifests_have_byte_identical_disk_members(Compression compression)
    {
        var monday = await StreamFixtures.BuildAsync(compression, created: new DateTime(2026, 11, 23, 1, 0, 0, DateTimeKind.Utc));
        var tuesday = await StreamFixtures.BuildAsync(compression, created: new DateTime(2026, 11, 24, 1, 0, 17, DateTimeKind.Utc));

        var mondayRecords = TarSurgery.Records(monday.Stream);
        var tuesdayRecords = TarSurgery.Records(tuesday.Stream);

        Assert.NotEqual(
            TarSurgery.Bytes(monday.Stream, mondayRecords.Single(r => r.Name == MemberNames.Manifest)),
            TarSurgery.Bytes(tuesday.Stream, tuesdayRecords.Single(r => r.Name == MemberNames.Manifest)));
        var diskMembers = mondayRecords.Where(r => !r.Name.StartsWith("virtbackup/", StringComparison.Ordinal)).ToList();
        Assert.Equal(15, diskMembers.Count); // nvram, 2 TPM files, 2 maps, 10 data members
        foreach (var m in diskMembers)
        {
            var t = tuesdayRecords.Single(r => r.Name == m.Name);
            Assert.Equal(0, m.HeaderOffset % 512);
            Assert.Equal(TarSurgery.Bytes(monday.Stream, m), TarSurgery.Bytes(tuesday.Stream, t));
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Parallel_and_serial_compression_produce_the_same_stream()
    {
        var disks = StreamFixtures.TwoDisks();
        var manifest = StreamFixtures.Manifest(StreamFixtures.Options(Compression.Zstd), disks, tpm: false, nvram: false);

        async Task<byte[]> Write(int parallelism)
        {
            var output = new MemoryStream();
            await using var writer = new BackupStreamWriter(output, StreamFixtures.Options(Compression.Zstd) with { MaxParallelism = parallelism });
            await writer.WriteManifestAsync(manifest, default);
            await writer.WriteDomainXmlAsync("<domain/>", default);
            foreach (var disk in disks.Where(d => !d.Excluded))
            {
                await writer.WriteDiskMapAsync(disk.Target, disk.Extents, default);
                await StreamFixtures.WriteDataAsync(writer, disk, 30_000);
            }
            await writer.CompleteAsync(default);
            return output.ToArray();
        }

        Assert.Equal(await Write(1), await Write(4));
    }

    [Fact(Timeout = 30_000)]
    public async Task An_unchanged_member_is_byte_identical_even_when_other_data_of_the_disk_changed()
    {
        var before = StreamFixtures.TwoDisks();
        var changedImage = (byte[])before[0].Image.Clone();
        changedImage[70_000] ^= 0xFF; // inside the second member of vda only
        IReadOnlyList<SyntheticDisk> after = [before[0] with { Image = changedImage }, before[1], before[2]];

        var a = await StreamFixtures.BuildAsync(Compression.Zstd, disks: before);
        var b = await StreamFixtures.BuildAsync(Compression.Zstd, disks: after);

        var ra = TarSurgery.Records(a.Stream).Where(r => r.Name.StartsWith("disks/", StringComparison.Ordinal)).ToList();
        var rb = TarSurgery.Records(b.Stream).Where(r => r.Name.StartsWith("disks/", StringComparison.Ordinal)).ToList();
        var differing = ra.Zip(rb).Where(p => !TarSurgery.Bytes(a.Stream, p.First).SequenceEqual(TarSurgery.Bytes(b.Stream, p.Second)))
            .Select(p => p.First.Name).ToList();
        Assert.Equal(["disks/vda/0000000000010000.zst"], differing);
    }
}
