namespace VirtBackup.Tests.Stream;

/// <summary>The reader decodes data members ahead of the consumer, in parallel: nothing of that may show.</summary>
public class StreamReaderLookAheadTests
{
    [Theory(Timeout = 30_000)]
    [InlineData(Compression.Zstd, 1)]
    [InlineData(Compression.Zstd, 2)]
    [InlineData(Compression.Zstd, 8)]
    [InlineData(Compression.None, 1)]
    [InlineData(Compression.None, 8)]
    public async Task Every_look_ahead_yields_the_same_members_and_each_members_data_stays_intact_until_the_next(Compression compression, int ahead)
    {
        // 32 data members of vda, then vdb's: the look-ahead crosses from one disk to the next.
        var backup = await StreamFixtures.BuildAsync(compression, disks:
        [
            StreamFixtures.Disk("vda", 3 << 20, 5, new DiskExtent(0, 1 << 20, false), new DiskExtent(1 << 20, 1 << 20, true), new DiskExtent(2 << 20, 1_000_000, false)),
            StreamFixtures.TwoDisks()[1],
        ]);

        // ReadAllAsync copies each member's data only when the consumer gets it: a look-ahead reusing that
        // buffer too early would show here as wrong bytes.
        var members = await StreamFixtures.ReadAllAsync(backup.Stream, new ReaderOptions { DecodeAhead = ahead });

        Assert.Equal(33, members.OfType<DiskDataMember>().Count());
        foreach (var disk in backup.Disks.Where(d => !d.Excluded))
        {
            foreach (var data in members.OfType<DiskDataMember>().Where(d => d.Target == disk.Target))
            {
                Assert.Equal(disk.Image.AsSpan((int)data.Offset, data.Length), data.Data.Span);
            }
        }
        var trailer = Assert.IsType<TrailerMember>(members[^1]);
        Assert.Equal(members.Select(m => m.Name).SkipLast(1), trailer.Trailer.Members.Select(e => e.Name));
    }

    [Fact(Timeout = 10_000)]
    public async Task Members_other_than_data_are_not_read_ahead_of_the_consumer()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var ends = TarSurgery.Records(backup.Stream).ToDictionary(r => r.Name, r => r.End);
        var reader = new BackupStreamReader(new MemoryStream(backup.Stream, writable: false), new ReaderOptions { DecodeAhead = 8 });

        await foreach (var member in reader.ReadAsync())
        {
            if (member is TrailerMember)
            {
                break;
            }

            if (member is not DiskDataMember)
            {
                Assert.Equal(ends[member.Name], reader.Position);
            }
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task A_corrupt_zstd_member_is_refused_after_exactly_the_members_before_it()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var records = TarSurgery.Records(backup.Stream);
        var bad = records.Where(r => r.Name.StartsWith("disks/vda/", StringComparison.Ordinal) && r.Name.EndsWith(".zst", StringComparison.Ordinal)).ElementAt(2);
        var corrupt = (byte[])backup.Stream.Clone();
        corrupt[bad.ContentOffset + bad.Size / 2] ^= 0x40;
        var seen = new List<string>();

        var e = await Assert.ThrowsAsync<StreamFormatException>(async () =>
        {
            var reader = new BackupStreamReader(new UnseekableStream(new MemoryStream(corrupt, writable: false)), new ReaderOptions { DecodeAhead = 8 });
            await foreach (var member in reader.ReadAsync())
            {
                seen.Add(member.Name);
            }
        });

        Assert.Equal(bad.Name, e.Member);
        Assert.Equal(records.TakeWhile(r => r != bad).Select(r => r.Name), seen);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_consumer_that_stops_early_never_hears_of_a_corrupt_member_it_did_not_reach()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var bad = TarSurgery.Records(backup.Stream).Where(r => r.Name.EndsWith(".zst", StringComparison.Ordinal)).ElementAt(3);
        var corrupt = (byte[])backup.Stream.Clone();
        corrupt[bad.ContentOffset + bad.Size / 2] ^= 0x40;
        var reader = new BackupStreamReader(new MemoryStream(corrupt, writable: false), new ReaderOptions { DecodeAhead = 8 });
        string? last = null;

        await foreach (var member in reader.ReadAsync())
        {
            last = member.Name;
            if (member is DiskDataMember)
            {
                break;
            }
        }

        Assert.Equal("disks/vda/0000000000000000.zst", last);
    }

    [Fact]
    public void A_look_ahead_below_one_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new BackupStreamReader(new MemoryStream(), new ReaderOptions { DecodeAhead = 0 }));
    }

    [Fact]
    public void The_system_libzstd_and_ZstdSharp_decode_a_frame_alike_and_both_refuse_a_corrupt_one()
    {
        Assert.True(NativeZstd.IsAvailable, "libzstd.so.1 is part of every Debian system");
        var content = StreamFixtures.Content(300_000, 11);
        var frame = new byte[ZstdFrames.CompressBound(content.Length)];
        frame = frame[..ZstdFrames.CompressManaged(content, frame, 3)];
        var native = new byte[content.Length];
        var managed = new byte[content.Length];

        Assert.Null(ZstdFrames.Decompress(frame, native));
        Assert.Null(ZstdFrames.DecompressManaged(frame, managed));
        Assert.Equal(content, native);
        Assert.Equal(content, managed);

        frame[frame.Length / 2] ^= 0x40;
        Assert.StartsWith("zstd frame is corrupt (", ZstdFrames.Decompress(frame, native));
        Assert.StartsWith("zstd frame is corrupt (", ZstdFrames.DecompressManaged(frame, managed));
    }
}
