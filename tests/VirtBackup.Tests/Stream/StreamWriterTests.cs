using System.IO.Pipes;

namespace VirtBackup.Tests.Stream;

public class StreamWriterTests
{
    private static readonly StreamWriterOptions Options = StreamFixtures.Options(Compression.Zstd);

    private static Manifest ManifestFor(IReadOnlyList<SyntheticDisk> disks, bool tpm = true, bool nvram = true) =>
        StreamFixtures.Manifest(Options, disks, tpm: tpm, nvram: nvram);

    private static async Task<BackupStreamWriter> StartedAsync(System.IO.Stream output, Manifest manifest)
    {
        var writer = new BackupStreamWriter(output, Options);
        await writer.WriteManifestAsync(manifest, default);
        await writer.WriteDomainXmlAsync("<domain/>", default);
        return writer;
    }

    private static readonly IReadOnlyList<SyntheticDisk> Disks = StreamFixtures.TwoDisks();

    /// <summary>A writer past the prologue of a stream of <see cref="Disks"/> without NVRAM or TPM.</summary>
    private static Task<BackupStreamWriter> StartedOnTwoDisksAsync() =>
        StartedAsync(new MemoryStream(), ManifestFor(Disks, tpm: false, nvram: false));

    /// <summary>A writer of <see cref="Disks"/> whose next member is vda's data, its map just written.</summary>
    private static async Task<BackupStreamWriter> AtVdaDataAsync()
    {
        var writer = await StartedOnTwoDisksAsync();
        await writer.WriteDiskMapAsync("vda", Disks[0].Extents, default);
        return writer;
    }

    [Fact(Timeout = 10_000)]
    public async Task The_manifest_must_be_written_first()
    {
        await using var writer = new BackupStreamWriter(new MemoryStream(), Options);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteDomainXmlAsync("<domain/>", default));

        Assert.Equal("The domain XML must follow the manifest and be written once.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_manifest_whose_compression_differs_from_the_options_is_refused()
    {
        await using var writer = new BackupStreamWriter(new MemoryStream(), Options);
        var manifest = ManifestFor([]) with { Compression = new CompressionInfo(Compression.None, 0, 65536) };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteManifestAsync(manifest, default));

        Assert.StartsWith("Manifest compression CompressionInfo { Algorithm = None, Level = 0, MemberSize = 65536 } differs", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_invalid_manifest_is_refused_with_the_reason()
    {
        await using var writer = new BackupStreamWriter(new MemoryStream(), Options);
        var manifest = ManifestFor([]) with { Level = BackupLevel.Inc, ParentCheckpoint = null };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteManifestAsync(manifest, default));

        Assert.StartsWith("Invalid manifest: an inc backup needs a parentCheckpoint.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disks_cannot_start_before_the_announced_nvram_and_tpm()
    {
        var disks = StreamFixtures.TwoDisks();
        await using var writer = await StartedAsync(new MemoryStream(), ManifestFor(disks));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteDiskMapAsync("vda", disks[0].Extents, default));

        Assert.Equal("The manifest announces NVRAM but none was written.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Nvram_is_refused_when_the_manifest_says_there_is_none()
    {
        await using var writer = await StartedAsync(new MemoryStream(), ManifestFor([], nvram: false));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteNvramAsync("VARS.fd", new byte[10], default));

        Assert.Equal("The manifest says there is no NVRAM.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Tpm_files_must_come_in_ordinal_order()
    {
        await using var writer = await StartedAsync(new MemoryStream(), ManifestFor([], nvram: false));
        await writer.WriteTpmFileAsync("tpm2/b", new byte[1], default);

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteTpmFileAsync("tpm2/a", new byte[1], default));

        Assert.StartsWith("TPM file 'tpm2/a' does not come after 'tpm2/b' in ordinal order.", e.Message);
    }

    [Theory(Timeout = 10_000)]
    [InlineData("../x", "'..' segment")]
    [InlineData("/abs", "it is an absolute path")]
    [InlineData("a//b", "empty path segment")]
    [InlineData("a\\b", "it contains a backslash")]
    [InlineData("a b", "character '\\u0020' is not allowed (only A-Z a-z 0-9 . _ - +)")]
    public async Task Unsafe_tpm_paths_are_refused(string path, string reason)
    {
        await using var writer = await StartedAsync(new MemoryStream(), ManifestFor([], nvram: false));

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteTpmFileAsync(path, new byte[1], default));

        Assert.StartsWith($"TPM state path '{path}' is not usable: {reason}.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disks_must_come_in_manifest_order()
    {
        await using var writer = await StartedOnTwoDisksAsync();

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteDiskMapAsync("vdb", Disks[1].Extents, default));

        Assert.Equal("The next disk in manifest order is 'vda', not 'vdb'.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Overlapping_extents_are_refused()
    {
        await using var writer = await StartedOnTwoDisksAsync();

        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            writer.WriteDiskMapAsync("vda", [new DiskExtent(0, 100, false), new DiskExtent(50, 100, true)], default));

        Assert.StartsWith("Invalid extents for disk 'vda': extent at 50 is out of order or overlaps the previous one (ending at 100).", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Adjacent_extents_of_the_same_kind_are_merged_in_the_map()
    {
        var disk = StreamFixtures.Disk("vda", 200_000, 1, new DiskExtent(0, 1000, false), new DiskExtent(1000, 2000, false), new DiskExtent(3000, 10, true));
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, disks: [disk]);

        var map = (await StreamFixtures.ReadAllAsync(backup.Stream)).OfType<DiskMapMember>().Single();

        Assert.Equal([new DiskExtent(0, 3000, false), new DiskExtent(3000, 10, true)], map.Map.Extents);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disk_data_must_continue_where_the_previous_data_ended()
    {
        await using var writer = await AtVdaDataAsync();
        await writer.WriteDiskDataAsync("vda", 0, new byte[1000], default);

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteDiskDataAsync("vda", 2000, new byte[1000], default));

        Assert.StartsWith("Data for disk 'vda' must continue at offset 1000; got offset 2000.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disk_data_may_not_run_past_its_data_extent()
    {
        await using var writer = await AtVdaDataAsync();

        var e = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteDiskDataAsync("vda", 0, new byte[150_001], default));

        Assert.StartsWith("Data for disk 'vda' at offset 0 (+150001) runs past the end of its data extent at 150000.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_trailer_cannot_be_written_while_disk_data_is_missing()
    {
        await using var writer = await AtVdaDataAsync();
        await writer.WriteDiskDataAsync("vda", 0, new byte[150_000], default);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.CompleteAsync(default));

        Assert.Equal("Disk 'vda' still needs data at offset 262244.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_trailer_cannot_be_written_while_a_disk_map_is_missing()
    {
        await using var writer = await AtVdaDataAsync();
        await StreamFixtures.WriteDataAsync(writer, Disks[0], 1 << 20);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.CompleteAsync(default));

        Assert.Equal("Disk 'vdb' has no map yet.", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_member_layout_does_not_depend_on_how_the_caller_chunks_its_writes()
    {
        var a = await StreamFixtures.BuildAsync(Compression.Zstd, writeChunk: 1);
        var b = await StreamFixtures.BuildAsync(Compression.Zstd, writeChunk: 1 << 20);

        Assert.Equal(a.Stream, b.Stream);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_output_error_is_surfaced_unchanged_and_no_trailer_is_written_afterwards()
    {
        var disks = StreamFixtures.TwoDisks();
        var output = new FailingStream(failAfterBytes: 100_000);
        var writer = await StartedAsync(output, ManifestFor(disks, tpm: false, nvram: false));
        await writer.WriteDiskMapAsync("vda", disks[0].Extents, default);

        var e = await Assert.ThrowsAsync<IOException>(async () =>
        {
            await StreamFixtures.WriteDataAsync(writer, disks[0], 4096);
            await writer.WriteDiskMapAsync("vdb", disks[1].Extents, default);
            await StreamFixtures.WriteDataAsync(writer, disks[1], 4096);
            await writer.CompleteAsync(default);
        });

        Assert.Equal("Broken pipe (simulated)", e.Message);
        Assert.False(writer.IsCompleted);
        await Assert.ThrowsAsync<IOException>(() => writer.CompleteAsync(default));
        await writer.DisposeAsync();
        Assert.False(output.SawTrailer);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disposing_an_unfinished_writer_leaves_a_stream_the_reader_refuses()
    {
        var disks = StreamFixtures.TwoDisks();
        var output = new MemoryStream();
        var writer = await StartedAsync(output, ManifestFor(disks, tpm: false, nvram: false));
        await writer.WriteDiskMapAsync("vda", disks[0].Extents, default);
        await StreamFixtures.WriteDataAsync(writer, disks[0], 100_000);

        await writer.DisposeAsync();
        await writer.DisposeAsync();

        Assert.False(writer.IsCompleted);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.CompleteAsync(default));
        var e = await StreamFixtures.RefusedAsync(output.ToArray());
        // Pending members are dropped: whatever got out ends before the trailer.
        Assert.StartsWith("disks/", e.Member);
        Assert.StartsWith("missing: the stream ends at byte", e.Problem);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_closed_pipe_surfaces_as_an_IOException()
    {
        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        server.DisposeLocalCopyOfClientHandle();
        client.Dispose(); // the consumer goes away: writes now fail with EPIPE

        var disk = StreamFixtures.Disk("vda", 1 << 20, 5, new DiskExtent(0, 1 << 20, false));
        var writer = new BackupStreamWriter(server, Options);

        await Assert.ThrowsAsync<IOException>(async () =>
        {
            await writer.WriteManifestAsync(ManifestFor([disk], tpm: false, nvram: false), default);
            await writer.WriteDomainXmlAsync("<domain/>", default);
            await writer.WriteDiskMapAsync("vda", disk.Extents, default);
            await StreamFixtures.WriteDataAsync(writer, disk, 65536);
            await writer.CompleteAsync(default);
        });
        await writer.DisposeAsync();
    }

    [Fact(Timeout = 10_000)]
    public async Task Concurrent_calls_are_refused()
    {
        var disk = StreamFixtures.Disk("vda", 1 << 20, 5, new DiskExtent(0, 1 << 20, false));
        var gate = new GateStream();
        await using var writer = new BackupStreamWriter(gate, Options with { MaxParallelism = 1 });
        await writer.WriteManifestAsync(ManifestFor([disk], tpm: false, nvram: false), default);
        await writer.WriteDomainXmlAsync("<domain/>", default);
        // The output blocks on the manifest and the queue (one slot) holds the XML, so this call waits.
        var blocked = writer.WriteDiskMapAsync("vda", disk.Extents, default);
        await Task.Delay(100);
        Assert.False(blocked.IsCompleted);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => writer.WriteDiskDataAsync("vda", 0, new byte[1], default));

        Assert.Equal("BackupStreamWriter does not support concurrent calls.", e.Message);
        gate.Open();
        await blocked;
    }

    private sealed class FailingStream(long failAfterBytes) : WriteOnlyStream
    {
        private long _written;
        public bool SawTrailer { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (System.Text.Encoding.ASCII.GetString(buffer.Span[..Math.Min(100, buffer.Length)]).StartsWith(MemberNames.Trailer, StringComparison.Ordinal))
            {
                SawTrailer = true;
            }

            _written += buffer.Length;
            if (_written > failAfterBytes)
            {
                throw new IOException("Broken pipe (simulated)");
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class GateStream : WriteOnlyStream
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Open() => _open.TrySetResult();
        public override void Write(byte[] buffer, int offset, int count) => _open.Task.GetAwaiter().GetResult();
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => await _open.Task.WaitAsync(cancellationToken);
    }
}
