namespace VirtBackup.Tests.Stream;

/// <summary>A synthetic disk: its full image (zeros outside data extents) and the map the backup declares.</summary>
internal sealed record SyntheticDisk(string Target, byte[] Image, IReadOnlyList<DiskExtent> Extents, bool Excluded = false)
{
    public long VirtualSize => Image.Length;
}

/// <summary>Everything a synthetic backup contains, and the stream the writer made of it.</summary>
internal sealed record SyntheticBackup(
    Manifest Manifest,
    string DomainXml,
    string NvramFileName,
    byte[] Nvram,
    IReadOnlyList<(string Path, byte[] Content)> TpmFiles,
    IReadOnlyList<SyntheticDisk> Disks,
    byte[] Stream);

internal static class StreamFixtures
{
    public const int SmallMemberSize = 64 * 1024;

    /// <summary>The members <see cref="BuildAsync"/> writes before the disks, in order.</summary>
    public static readonly string[] MembersBeforeDisks =
    [
        "virtbackup/manifest.json",
        "virtbackup/domain.xml",
        "state/nvram/win11_VARS.fd",
        "state/tpm/tpm2/tpm2-00.permall",
        "state/tpm/tpm2/tpm2-00.volatilestate",
    ];
    public static readonly DateTime FixedTime = new(2026, 11, 27, 10, 30, 0, DateTimeKind.Utc);

    /// <summary>Deterministic, partly compressible bytes: runs of text, random bytes and zeros.</summary>
    public static byte[] Content(int length, int seed)
    {
        var rnd = new Random(seed);
        var bytes = new byte[length];
        var pos = 0;
        while (pos < length)
        {
            var run = Math.Min(length - pos, rnd.Next(100, 5000));
            switch (rnd.Next(3))
            {
                case 0:
                    rnd.NextBytes(bytes.AsSpan(pos, run));
                    break;
                case 1:
                    for (var i = 0; i < run; i++)
                    {
                        bytes[pos + i] = (byte)"virtbackup stream "[(pos + i) % 18];
                    }

                    break;
                default:
                    bytes.AsSpan(pos, run).Fill((byte)(seed + 1)); // never all zero
                    break;
            }
            pos += run;
        }
        return bytes;
    }

    /// <summary>An image of <paramref name="size"/> bytes holding content in the data extents and zeros elsewhere.</summary>
    public static SyntheticDisk Disk(string target, long size, int seed, params DiskExtent[] extents)
    {
        var image = new byte[size];
        foreach (var e in extents.Where(e => !e.Zero))
        {
            Content((int)e.Length, seed + (int)e.Offset).CopyTo(image, e.Offset);
        }

        return new SyntheticDisk(target, image, extents);
    }

    /// <summary>Two disks with data and zero extents (unaligned, crossing member boundaries) plus an excluded one.</summary>
    public static IReadOnlyList<SyntheticDisk> TwoDisks(int seed = 7) =>
    [
        Disk("vda", 1024 * 1024, seed,
            new DiskExtent(0, 150_000, false),
            new DiskExtent(150_000, 112_144, true),
            new DiskExtent(262_244, 337_756, false),
            new DiskExtent(1024 * 1024 - 5000, 5000, false)),
        Disk("vdb", 300_000, seed + 1,
            new DiskExtent(0, 65_536, true),
            new DiskExtent(65_536, 4_464, false),
            new DiskExtent(70_000, 10_000, true)),
        new SyntheticDisk("sdc", new byte[4096], [], Excluded: true),
    ];

    public static Manifest Manifest(StreamWriterOptions options, IReadOnlyList<SyntheticDisk> disks, DateTime? created = null,
        BackupLevel level = BackupLevel.Full, bool tpm = true, bool nvram = true, int formatVersion = VirtBackup.Core.Stream.Manifest.CurrentFormatVersion) => new()
        {
            FormatVersion = formatVersion,
            ToolVersion = "0.1.0-test",
            DomainName = "win11",
            DomainUuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
            Level = level,
            Checkpoint = level == BackupLevel.Copy ? null : "virtbackup-20261127T103000Z",
            ParentCheckpoint = level == BackupLevel.Inc ? "virtbackup-20261126T103000Z" : null,
            ChainId = level == BackupLevel.Copy ? null : "chain-0001",
            CreatedUtc = created ?? FixedTime,
            PauseWindowMs = 42,
            Freeze = FreezeState.Frozen,
            Compression = CompressionInfo.From(options),
            Disks = disks.Select(d => new ManifestDisk(d.Target, DiskFormat.Qcow2, d.VirtualSize, d.Excluded, $"/var/lib/libvirt/images/{d.Target}.qcow2")).ToList(),
            Tpm = tpm ? new TpmInfo(true, "2.0", null) : TpmInfo.None,
            NvramPresent = nvram,
            Warnings = ["test warning"],
        };

    public static StreamWriterOptions Options(Compression compression, int memberSize = SmallMemberSize) =>
        compression == Compression.Zstd ? StreamWriterOptions.Zstd(3, memberSize) : StreamWriterOptions.Uncompressed(memberSize);

    /// <summary>Writes a complete synthetic backup; disk data is passed in calls of <paramref name="writeChunk"/> bytes.</summary>
    public static async Task<SyntheticBackup> BuildAsync(Compression compression, int memberSize = SmallMemberSize,
        IReadOnlyList<SyntheticDisk>? disks = null, DateTime? created = null, int writeChunk = 50_000, int seed = 7,
        BackupLevel level = BackupLevel.Full, int nvramSize = 540_672, IReadOnlyList<(string, byte[])>? tpmFiles = null,
        int formatVersion = VirtBackup.Core.Stream.Manifest.CurrentFormatVersion)
    {
        var options = Options(compression, memberSize);
        disks ??= TwoDisks(seed);
        var manifest = Manifest(options, disks, created, level, formatVersion: formatVersion);
        var xml = "<domain type='kvm'><name>win11</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>\n";
        var nvram = Content(nvramSize, seed + 100);
        var tpm = tpmFiles ??
        [
            ("tpm2/tpm2-00.permall", Content(9_000, seed + 200)),
            ("tpm2/tpm2-00.volatilestate", Content(1_234, seed + 300)),
        ];
        var output = new MemoryStream();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            var cancellationToken = CancellationToken.None;
            await writer.WriteManifestAsync(manifest, cancellationToken);
            await writer.WriteDomainXmlAsync(xml, cancellationToken);
            await writer.WriteNvramAsync("win11_VARS.fd", nvram, cancellationToken);
            foreach (var (path, content) in tpm)
            {
                await writer.WriteTpmFileAsync(path, content, cancellationToken);
            }

            foreach (var disk in disks.Where(d => !d.Excluded))
            {
                await writer.WriteDiskMapAsync(disk.Target, disk.Extents, cancellationToken);
                await WriteDataAsync(writer, disk, writeChunk);
            }
            await writer.CompleteAsync(cancellationToken);
        }
        return new SyntheticBackup(manifest, xml, "win11_VARS.fd", nvram, tpm, disks, output.ToArray());
    }

    /// <summary>Feeds the data extents of <paramref name="disk"/> to the writer in chunks that never cross an extent end.</summary>
    public static async Task WriteDataAsync(BackupStreamWriter writer, SyntheticDisk disk, int chunk)
    {
        foreach (var e in disk.Extents.Where(e => !e.Zero))
        {
            for (var pos = e.Offset; pos < e.End; pos += chunk)
            {
                var n = (int)Math.Min(chunk, e.End - pos);
                await writer.WriteDiskDataAsync(disk.Target, pos, disk.Image.AsMemory((int)pos, n), CancellationToken.None);
            }
        }
    }

    public static async Task<List<StreamMember>> ReadAllAsync(byte[] stream, ReaderOptions? options = null)
    {
        var members = new List<StreamMember>();
        var reader = new BackupStreamReader(new MemoryStream(stream, writable: false), options);
        await foreach (var m in reader.ReadAsync())
        {
            // Data is a reused buffer: keep a copy.
            members.Add(m is DiskDataMember d ? d with { Data = d.Data.ToArray() } : m);
        }
        return members;
    }

    public static async Task<StreamFormatException> RefusedAsync(byte[] stream, ReaderOptions? options = null)
    {
        var reader = new BackupStreamReader(new UnseekableStream(new MemoryStream(stream, writable: false)), options);
        return await Assert.ThrowsAsync<StreamFormatException>(async () =>
        {
            await foreach (var _ in reader.ReadAsync()) { }
        });
    }
}

/// <summary>Wraps a stream so it looks like a pipe: no seeking, no length.</summary>
internal sealed class UnseekableStream(System.IO.Stream inner) : System.IO.Stream
{
    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 7_000));
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer[..Math.Min(buffer.Length, 7_000)], cancellationToken); // short reads, like a pipe
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
}

/// <summary>A tar member located in a stream: header at <see cref="HeaderOffset"/>, content right after it.</summary>
internal sealed record TarRecord(string Name, long HeaderOffset, long Size)
{
    public long ContentOffset => HeaderOffset + 512;
    public long End => ContentOffset + (Size + 511) / 512 * 512;
    public long Length => End - HeaderOffset;
}

/// <summary>Independent, minimal tar walking and rebuilding for tests (does not use the reader).</summary>
internal static class TarSurgery
{
    public static List<TarRecord> Records(byte[] tar)
    {
        var records = new List<TarRecord>();
        long pos = 0;
        while (pos + 512 <= tar.Length && tar.AsSpan((int)pos, 512).ContainsAnyExcept((byte)0))
        {
            var header = tar.AsSpan((int)pos, 512);
            var nameEnd = header[..100].IndexOf((byte)0);
            var name = System.Text.Encoding.ASCII.GetString(header[..(nameEnd < 0 ? 100 : nameEnd)]);
            var size = Convert.ToInt64(System.Text.Encoding.ASCII.GetString(header.Slice(124, 11)), 8);
            var record = new TarRecord(name, pos, size);
            records.Add(record);
            pos = record.End;
        }
        return records;
    }

    public static byte[] Bytes(byte[] tar, TarRecord r) => tar.AsSpan((int)r.HeaderOffset, (int)r.Length).ToArray();

    public static byte[] Content(byte[] tar, TarRecord r) => tar.AsSpan((int)r.ContentOffset, (int)r.Size).ToArray();

    /// <summary>A complete member (canonical header, content, padding).</summary>
    public static byte[] Member(string name, byte[] content)
    {
        var bytes = new byte[512 + (content.Length + 511) / 512 * 512];
        VirtBackup.Core.Stream.TarHeader.Write(bytes.AsSpan(0, 512), name, content.Length);
        content.CopyTo(bytes, 512);
        return bytes;
    }

    public static byte[] EndOfArchive => new byte[1024];

    /// <summary>Reassembles a stream from member byte blocks, then the end-of-archive.</summary>
    public static byte[] Join(IEnumerable<byte[]> members) => members.Append(EndOfArchive).SelectMany(b => b).ToArray();

    /// <summary>The stream with member <paramref name="name"/>'s content replaced (header rewritten).</summary>
    public static byte[] ReplaceContent(byte[] tar, string name, Func<byte[], byte[]> change) =>
        Join(Records(tar).Select(r => r.Name == name ? Member(name, change(Content(tar, r))) : Bytes(tar, r)));

    /// <summary>The stream with its trailer's JSON edited by <paramref name="edit"/> (written back indented, as the writer does).</summary>
    public static byte[] EditTrailer(byte[] tar, Action<System.Text.Json.Nodes.JsonObject> edit) =>
        ReplaceContent(tar, MemberNames.Trailer, content =>
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(content)!.AsObject();
            edit(json);
            var options = new System.Text.Json.JsonSerializerOptions { WriteIndented = true, IndentSize = 2, NewLine = "\n" };
            return System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(options) + "\n");
        });
}
