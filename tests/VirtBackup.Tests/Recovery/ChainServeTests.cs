using VirtBackup.Core.Recovery;

namespace VirtBackup.Tests.Recovery;

/// <summary>The chain index and the NBD server, in-process, read with our own NBD client.</summary>
public sealed class ChainServeTests
{
    private static readonly NbdConnectOptions WithAllocation = new() { MetaContexts = ["base:allocation"] };

    [Theory(Timeout = 60000)]
    [InlineData(4, 4, 4)]
    [InlineData(3, 4, 4)]
    [InlineData(3, 3, 3)]
    [InlineData(2, 2, 3)]
    [InlineData(2, 2, 2)]
    [InlineData(1, 1, 1)]
    [InlineData(1, 2, 2)]
    public async Task A_full_and_two_incrementals_read_back_byte_equal_to_the_disks_at_the_last_backup(int full, int inc1, int inc2)
    {
        await using var chain = await ServedChain.StartAsync(formatVersions: [full, inc1, inc2]);
        foreach (var (target, expected) in chain.Expected)
        {
            await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri(target)), WithAllocation);
            var buffer = new byte[client.ExportSize];
            buffer.AsSpan().Fill(0xEE);
            await client.ReadAsync(0, buffer);
            Assert.Equal(expected.Length, client.ExportSize);
            Assert.True(buffer.AsSpan().SequenceEqual(expected), $"disk {target} differs");
            Assert.True(client.ReadOnly);
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Pipelined_unaligned_reads_from_several_connections_all_return_the_right_bytes()
    {
        await using var chain = await ServedChain.StartAsync();
        var expected = chain.Expected["vda"];
        var uri = NbdUri.Parse(chain.Uri("vda"));
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => NbdClient.ConnectAsync(uri, WithAllocation)));
        var random = new Random(5);
        var reads = Enumerable.Range(0, 200).Select(i =>
        {
            var offset = random.Next(expected.Length - 1);
            var length = 1 + random.Next(Math.Min(200_000, expected.Length - offset));
            return (Client: clients[i % clients.Length], Offset: offset, Length: length);
        }).ToList();

        var results = await Task.WhenAll(reads.Select(async r =>
        {
            var buffer = new byte[r.Length];
            await r.Client.ReadAsync(r.Offset, buffer);
            return buffer.AsSpan().SequenceEqual(expected.AsSpan(r.Offset, r.Length));
        }));

        Assert.All(results, Assert.True);
        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Block_status_reports_holes_zero_extents_and_data_as_the_chain_left_them()
    {
        await using var chain = await ServedChain.StartAsync();
        await using var vdb = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vdb")), WithAllocation);
        await using var vda = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")), WithAllocation);

        var vdbExtents = await vdb.GetExtentsAsync("base:allocation", 0, vdb.ExportSize).ToListAsync();
        var vdaExtents = await vda.GetExtentsAsync("base:allocation", 0, vda.ExportSize).ToListAsync();

        // vdb: one data extent in the full, untouched by the incrementals; the rest was never allocated.
        Assert.Equal([new NbdExtent(0, 65_536, 3), new NbdExtent(65_536, 4_464, 0), new NbdExtent(70_000, 230_000, 3)], vdbExtents);
        // vda: the incrementals wrote zeros over [0, 40000) and [500000, 565536), data over what was zero at 150000.
        Assert.Equal(new NbdExtent(0, 40_000, 2), vdaExtents[0]);
        Assert.Contains(new NbdExtent(500_000, 65_536, 2), vdaExtents);
        Assert.Equal(0u, vdaExtents.Single(e => e.Offset <= 150_000 && e.End > 150_000).Flags);
        Assert.Equal(vda.ExportSize, vdaExtents[^1].End);
    }

    [Fact(Timeout = 60000)]
    public async Task Without_structured_replies_reads_get_simple_replies_with_the_same_bytes()
    {
        await using var chain = await ServedChain.StartAsync();
        await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")), new NbdConnectOptions { StructuredReplies = false });
        var buffer = new byte[client.ExportSize];

        await client.ReadAsync(0, buffer);

        Assert.False(client.StructuredReplies);
        Assert.True(buffer.AsSpan().SequenceEqual(chain.Expected["vda"]));
    }

    [Fact(Timeout = 60000)]
    public async Task The_export_list_names_the_disks_by_target()
    {
        await using var chain = await ServedChain.StartAsync();

        var exports = await NbdClient.ListExportsAsync(NbdUri.Unix(chain.Socket));

        Assert.Equal(["vda", "vdb"], exports.Select(e => e.Name));
        Assert.Equal($"nbd+unix:///vda?socket={chain.Socket}", chain.Uri("vda"));
    }

    [Theory(Timeout = 60000)]
    [InlineData(4)] // checked by the stored bytes' SHA-256
    [InlineData(3)] // checked by the content's SHA-256
    public async Task A_bit_flip_in_one_data_member_fails_reads_of_its_range_with_EIO_and_one_log_line_while_the_rest_reads_correctly(int version)
    {
        // The full's only vdb member: flip one bit of its stored bytes. The index opens anyway: it reads no data.
        await using var chain = await ServedChain.StartAsync((i, bytes) => i == 0 ? FlipInMember(bytes, "disks/vdb/0000000000010000.zst") : bytes,
            formatVersions: [version, version, version]);
        await using var vdb = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vdb")), WithAllocation);
        await using var vda = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")), WithAllocation);

        var first = await Assert.ThrowsAsync<NbdException>(() => vdb.ReadAsync(60_000, new byte[8_000]));
        var second = await Assert.ThrowsAsync<NbdException>(() => vdb.ReadAsync(66_000, new byte[10]));
        var before = new byte[65_536];
        await vdb.ReadAsync(0, before);
        var after = new byte[230_000];
        await vdb.ReadAsync(70_000, after);
        var whole = new byte[vda.ExportSize];
        await vda.ReadAsync(0, whole);

        Assert.Equal(NbdProtocol.EIo, first.ServerErrno);
        Assert.Equal(NbdProtocol.EIo, second.ServerErrno);
        Assert.True(before.AsSpan().SequenceEqual(chain.Expected["vdb"].AsSpan(0, 65_536)));
        Assert.True(after.AsSpan().SequenceEqual(chain.Expected["vdb"].AsSpan(70_000)));
        Assert.True(whole.AsSpan().SequenceEqual(chain.Expected["vda"]));
        var errors = chain.LogLines.Where(l => l.StartsWith("Error", StringComparison.Ordinal)).ToList();
        Assert.Single(errors);
        Assert.Contains("disks/vdb/0000000000010000.zst", errors[0]);
    }

    [Fact(Timeout = 60000)]
    public async Task A_member_whose_stored_bytes_change_after_its_first_check_fails_with_EIO_when_it_is_read_again()
    {
        // A cache of one member: reading vda evicts the full's only vdb member, so the next vdb read reads the file again.
        await using var chain = await ServedChain.StartAsync(cacheBytes: 1);
        await using var vdb = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vdb")), WithAllocation);
        await using var vda = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vda")), WithAllocation);
        var checkedOnce = new byte[4_464];
        await vdb.ReadAsync(65_536, checkedOnce);
        await vda.ReadAsync(0, new byte[vda.ExportSize]);

        var record = TarSurgery.Records(await File.ReadAllBytesAsync(chain.Streams[0])).Single(r => r.Name == "disks/vdb/0000000000010000.zst");
        using (var file = File.OpenHandle(chain.Streams[0], FileMode.Open, FileAccess.ReadWrite))
        {
            var one = new byte[1];
            RandomAccess.Read(file, one, record.ContentOffset + record.Size / 2);
            one[0] ^= 0x10;
            RandomAccess.Write(file, one, record.ContentOffset + record.Size / 2);
        }

        var again = await Assert.ThrowsAsync<NbdException>(() => vdb.ReadAsync(65_536, new byte[4_464]));
        var whole = new byte[vda.ExportSize];
        await vda.ReadAsync(0, whole);

        Assert.True(checkedOnce.AsSpan().SequenceEqual(chain.Expected["vdb"].AsSpan(65_536, 4_464)));
        Assert.Equal(NbdProtocol.EIo, again.ServerErrno);
        Assert.True(whole.AsSpan().SequenceEqual(chain.Expected["vda"]));
        var error = Assert.Single(chain.LogLines, l => l.StartsWith("Error", StringComparison.Ordinal));
        Assert.Contains("disks/vdb/0000000000010000.zst", error);
        Assert.Contains("its stored bytes changed since they were first checked", error);
    }

    [Fact(Timeout = 60000)]
    public async Task Incrementals_out_of_order_are_refused_like_restore_refuses_them()
    {
        await using var chain = await ServedChain.StartAsync();

        var skipped = Assert.Throws<ChainGapException>(() => ChainIndex.Open([chain.Streams[0], chain.Streams[2]]));
        var incFirst = Assert.Throws<ChainGapException>(() => ChainIndex.Open([chain.Streams[1]]));
        var twice = Assert.Throws<ChainGapException>(() => ChainIndex.Open([chain.Streams[0], chain.Streams[1], chain.Streams[1]]));

        Assert.Contains("it continues from checkpoint 'virtbackup-chain-a-0002', but the stream before it is 'virtbackup-chain-a-0001'", skipped.Message);
        Assert.Contains("give the chain's full stream first", incFirst.Message);
        Assert.Contains("is given twice", twice.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task A_truncated_stream_file_is_refused_for_its_missing_trailer()
    {
        await using var chain = await ServedChain.StartAsync();
        var path = Path.Combine(chain.Dir, "cut.tar");
        var bytes = await File.ReadAllBytesAsync(chain.Streams[0]);
        await File.WriteAllBytesAsync(path, bytes.AsSpan(0, bytes.Length - 4096).ToArray());

        var e = Assert.Throws<VirtBackup.Core.Stream.StreamFormatException>(() => ChainIndex.Open([path]));

        Assert.Equal("virtbackup/trailer.json", e.Member);
    }

    [Fact(Timeout = 60000)]
    public async Task A_one_tebibyte_disk_with_64_KiB_of_data_serves_its_last_bytes_and_one_hole_without_reading_the_rest()
    {
        const long Size = 1L << 40;
        var data = StreamFixtures.Content(65_536, 9);
        var options = StreamFixtures.Options(VirtBackup.Core.Stream.Compression.Zstd);
        var disk = new SyntheticDisk("vda", [], [new(Size - 65_536, 65_536, false)]);
        var manifest = StreamFixtures.Manifest(options, [disk], tpm: false, nvram: false) with
        {
            Disks = [new VirtBackup.Core.Stream.ManifestDisk("vda", VirtBackup.Core.Stream.DiskFormat.Raw, Size, false, null)],
        };
        using var dir = new VirtBackup.Tests.Nbd.Peers.TempDir();
        var path = dir.File("big.tar");
        await using (var file = File.Create(path))
        await using (var writer = new VirtBackup.Core.Stream.BackupStreamWriter(file, options))
        {
            await writer.WriteManifestAsync(manifest, default);
            await writer.WriteDomainXmlAsync("<domain/>\n", default);
            await writer.WriteDiskMapAsync("vda", disk.Extents, default);
            await writer.WriteDiskDataAsync("vda", Size - 65_536, data, default);
            await writer.CompleteAsync(default);
        }

        await using var server = ChainServer.Start([path], ServeEndpoint.Unix(dir.File("s")), Serilog.Core.Logger.None);
        await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(server.Exports[0].Uri), WithAllocation);
        var tail = new byte[65_536];
        await client.ReadAsync(Size - 65_536, tail);
        var extents = await client.GetExtentsAsync("base:allocation", 0, Size).ToListAsync();

        Assert.Equal(Size, client.ExportSize);
        Assert.Equal(data, tail);
        Assert.Equal(0u, extents[^1].Flags);
        Assert.Equal(Size - 65_536, extents[^1].Offset);
        Assert.All(extents.SkipLast(1), e => Assert.Equal(3u, e.Flags));
    }

    [Fact(Timeout = 60000)]
    public async Task A_stream_rewritten_with_a_pax_header_is_located_header_to_header_and_reads_the_same_bytes()
    {
        await using var chain = await ServedChain.StartAsync((i, bytes) => i == 0 ? WithPaxHeaderBefore(bytes, "disks/vdb/0000000000010000.zst") : bytes);
        await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(chain.Uri("vdb")), WithAllocation);
        var buffer = new byte[client.ExportSize];

        await client.ReadAsync(0, buffer);

        Assert.Equal(chain.Expected["vdb"], buffer);
    }

    /// <summary>Inserts a pax extended header entry (type 'x') before <paramref name="member"/>, as a tar rewriter might.</summary>
    private static byte[] WithPaxHeaderBefore(byte[] stream, string member)
    {
        var record = TarSurgery.Records(stream).Single(r => r.Name == member);
        var content = System.Text.Encoding.ASCII.GetBytes("19 comment=rewrite\n");
        var header = VirtBackup.Core.Stream.TarHeader.Create("PaxHeaders/x", content.Length);
        header[VirtBackup.Core.Stream.TarHeader.TypeFlagOffset] = (byte)'x';
        var checksum = Convert.ToString(VirtBackup.Core.Stream.TarHeader.ComputeChecksum(header), 8).PadLeft(6, '0');
        System.Text.Encoding.ASCII.GetBytes(checksum, header.AsSpan(VirtBackup.Core.Stream.TarHeader.ChecksumOffset));
        header[VirtBackup.Core.Stream.TarHeader.ChecksumOffset + 6] = 0;
        var padded = new byte[512];
        content.CopyTo(padded, 0);
        return [.. stream.AsSpan(0, (int)record.HeaderOffset), .. header, .. padded, .. stream.AsSpan((int)record.HeaderOffset)];
    }

    internal static byte[] FlipInMember(byte[] stream, string member)
    {
        var record = TarSurgery.Records(stream).Single(r => r.Name == member);
        var copy = (byte[])stream.Clone();
        copy[record.ContentOffset + record.Size / 2] ^= 0x10;
        return copy;
    }
}
