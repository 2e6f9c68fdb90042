using System.Security.Cryptography;

namespace VirtBackup.Tests.Stream;

/// <summary><see cref="BackupStreamWriter.WriteStoredDiskDataAsync"/>: pre-encoded members copied as they are, checked first.</summary>
public class StoredMemberWriterTests
{
    private const int MemberSize = 64 * 1024;

    [Fact(Timeout = 30_000)]
    public async Task A_stored_raw_member_is_written_with_its_bytes_and_hash_and_the_stream_reads_back()
    {
        var content = StreamFixtures.Content(MemberSize, 3);
        var output = new MemoryStream();
        await using (var writer = await StartAsync(output))
        {
            await writer.WriteStoredDiskDataAsync("vda", 0, MemberSize, content, Sha(content), null, "test", CancellationToken.None);
            await writer.CompleteAsync(CancellationToken.None);
        }

        var stream = output.ToArray();
        var member = TarSurgery.Records(stream).Single(r => r.Name == MemberNames.DiskData("vda", 0, Compression.None));
        Assert.Equal(content, TarSurgery.Content(stream, member));
        Assert.Contains(await StreamFixtures.ReadAllAsync(stream), m => m.Name == member.Name);
    }

    [Fact(Timeout = 30_000)]
    public async Task Stored_bytes_that_do_not_match_their_hash_fault_the_writer_and_no_trailer_is_written()
    {
        var content = StreamFixtures.Content(MemberSize, 3);
        var output = new MemoryStream();
        await using (var writer = await StartAsync(output))
        {
            await writer.WriteStoredDiskDataAsync("vda", 0, MemberSize, content, Sha(StreamFixtures.Content(MemberSize, 4)), null, "'source.tar'", CancellationToken.None);

            var refused = await Assert.ThrowsAsync<StreamFormatException>(() => writer.CompleteAsync(CancellationToken.None));

            Assert.Equal("Invalid backup stream: member 'disks/vda/0000000000000000.raw': in 'source.tar': its stored bytes' SHA-256 differs from the trailer's (the stream file is corrupted)", refused.Message);
        }

        Assert.DoesNotContain(TarSurgery.Records(output.ToArray()), r => r.Name == MemberNames.Trailer);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_stored_member_that_is_not_the_next_whole_piece_is_refused_and_the_writer_stays_usable()
    {
        var content = StreamFixtures.Content(MemberSize, 3);
        await using var writer = await StartAsync(new MemoryStream());

        var wrongOffset = await Assert.ThrowsAsync<ArgumentException>(() =>
            writer.WriteStoredDiskDataAsync("vda", MemberSize, MemberSize, content, Sha(content), null, "test", CancellationToken.None));
        await writer.WriteDiskDataAsync("vda", 0, content.AsMemory(0, 100), CancellationToken.None);
        var halfWritten = await Assert.ThrowsAsync<ArgumentException>(() =>
            writer.WriteStoredDiskDataAsync("vda", 0, MemberSize, content, Sha(content), null, "test", CancellationToken.None));

        Assert.StartsWith("A stored member of 'vda' at 65536 (+65536) is not the next whole member (0, +65536).", wrongOffset.Message);
        Assert.StartsWith("A stored member of 'vda' at 0 (+65536) is not the next whole member (100, +65436).", halfWritten.Message);
        await writer.WriteDiskDataAsync("vda", 100, content.AsMemory(100), CancellationToken.None);
        await writer.CompleteAsync(CancellationToken.None);
    }

    private static async Task<BackupStreamWriter> StartAsync(System.IO.Stream output)
    {
        var options = StreamFixtures.Options(Compression.None, MemberSize);
        var disk = new SyntheticDisk("vda", new byte[MemberSize], [new DiskExtent(0, MemberSize, false)]);
        var writer = new BackupStreamWriter(output, options);
        await writer.WriteManifestAsync(StreamFixtures.Manifest(options, [disk], tpm: false, nvram: false), CancellationToken.None);
        await writer.WriteDomainXmlAsync("<domain/>", CancellationToken.None);
        await writer.WriteDiskMapAsync("vda", disk.Extents, CancellationToken.None);
        return writer;
    }

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
