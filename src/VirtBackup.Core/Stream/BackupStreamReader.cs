using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;

namespace VirtBackup.Core.Stream;

/// <summary>
/// Reads a VirtBackup stream sequentially from an unseekable input and checks everything it can as it goes:
/// tar headers must be well formed regular-file headers of the ustar, GNU or pax flavour (the writer's canonical
/// ustar headers, or another tar tool's repack of the same members: BackupStreamReader.Headers.cs), names must be
/// well formed and in the required order, sizes bounded, data members exactly where the disk maps put them, zstd frames single, checksummed and of the declared size (never decoded past it).
/// At the end the trailer must list every member in order with matching sizes and SHA-256, and only zero
/// blocks may follow. Any violation throws <see cref="StreamFormatException"/> naming the member.
/// <para>
/// The stream is proven complete and intact only when <see cref="ReadAsync"/> has finished without exception
/// (the <see cref="TrailerMember"/> is yielded after all checks): commit a restore only then.
/// Memory is bounded by the member size plus a small record (~300 bytes) per member for the trailer check.
/// </para>
/// </summary>
public sealed partial class BackupStreamReader
{
    private enum Stage { Manifest, DomainXml, State, Disks, Done }

    private const int MaxTrailerBaseSize = 64 * 1024;
    private const int MaxTrailerBytesPerMember = 1024;

    private readonly System.IO.Stream _input;
    private readonly ReaderOptions _options;
    private readonly byte[] _block = new byte[TarHeader.BlockSize];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly List<TrailerEntry> _entries = [];
    private int _started;

    private long _position;
    private string? _lastMember;
    private Stage _stage = Stage.Manifest;
    private Manifest? _manifest;
    private string _manifestSha256 = "";
    private bool _nvramSeen;
    private int _tpmCount;
    private string? _lastTpmPath;
    private int _nextDiskIndex;
    private CurrentDisk? _disk;

    public BackupStreamReader(System.IO.Stream input, ReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!input.CanRead)
        {
            throw new ArgumentException("The input stream is not readable.", nameof(input));
        }

        _input = input;
        _options = options ?? ReaderOptions.Default;
        if (_options.MaxMemberSize < StreamRules.MinMemberSize)
        {
            throw new ArgumentException($"MaxMemberSize must be at least {StreamRules.MinMemberSize}.", nameof(options));
        }

        if (_options.DecodeAhead < 1)
        {
            throw new ArgumentException("DecodeAhead must be at least 1.", nameof(options));
        }
    }

    /// <summary>Bytes consumed from the input so far.</summary>
    public long Position => _position;

    /// <summary>Yields the members in stream order; see the class remarks. Can be enumerated once.</summary>
    public async IAsyncEnumerable<StreamMember> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("A BackupStreamReader reads its input once.");
        }

        var ahead = new Queue<StreamMember>();
        ExceptionDispatchInfo? failure = null;
        var ended = false;
        try
        {
            while (true)
            {
                // Read on while the data members read so far decode (see BackupStreamReader.Data.cs), but never
                // past another member: memory holds at most DecodeAhead data members and one other.
                while (!ended && failure is null && _decoding.Count < _decodeAhead && ahead.Count == _decoding.Count)
                {
                    try
                    {
                        if (await NextAsync(cancellationToken).ConfigureAwait(false) is { } member)
                        {
                            ahead.Enqueue(member);
                        }
                        else
                        {
                            ended = true;
                        }
                    }
                    catch (Exception e) when (e is StreamFormatException or IOException)
                    {
                        // Not swallowed: thrown after the members before it, as a reader without look-ahead would.
                        failure = ExceptionDispatchInfo.Capture(e);
                    }
                }
                if (!ahead.TryDequeue(out var next))
                {
                    break;
                }

                if (next is DiskDataMember data)
                {
                    await FinishOldestDecodeAsync(data).ConfigureAwait(false);
                }

                yield return next;
            }
            failure?.Throw();
        }
        finally
        {
            await AbandonDecodesAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads and checks the whole stream, keeping nothing: the <c>verify</c> pass.</summary>
    public async Task<StreamSummary> VerifyAsync(CancellationToken cancellationToken = default)
    {
        Trailer? trailer = null;
        await foreach (var member in ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (member is TrailerMember t)
            {
                trailer = t.Trailer;
            }
        }

        return new StreamSummary(_manifest!, trailer!);
    }

    /// <summary>The disk being read: its map pieces read so far (one in versions 1 and 2) and the members the current one implies.</summary>
    private sealed class CurrentDisk(ManifestDisk disk, int pieceCount)
    {
        private IEnumerator<MemberPlan>? _members;

        public ManifestDisk Disk { get; } = disk;
        public int PieceCount { get; } = pieceCount;
        public int PiecesRead { get; private set; }
        public IEnumerator<MemberPlan> Members => _members!;

        /// <summary>The current piece's data members are all read.</summary>
        public bool MembersDone { get; private set; } = true;
        public bool IsComplete => MembersDone && PiecesRead == PieceCount;

        public void StartPiece(IEnumerator<MemberPlan> members)
        {
            _members = members;
            PiecesRead++;
            MembersDone = !members.MoveNext();
        }

        public void Advance() => MembersDone = !Members.MoveNext();
    }

    // ---- the state machine --------------------------------------------------------------------------

    private async Task<StreamMember?> NextAsync(CancellationToken cancellationToken)
    {
        if (_stage == Stage.Done)
        {
            return null;
        }

        var header = await ReadMemberHeaderAsync(cancellationToken).ConfigureAwait(false);
        var headerAt = header.At;
        if (!header.NameIsPrintableAscii)
        {
            throw Fail(After(), $"member name '{header.Name}' contains non-printable or non-ASCII bytes", headerAt);
        }

        if (!MemberNames.TryParse(header.Name, out var parsed, out var problem))
        {
            throw Fail(header.Name, problem, headerAt);
        }

        var name = parsed.Name;
        if (!_names.Add(name))
        {
            throw Fail(name, "duplicate member: this name appeared before", headerAt);
        }

        var size = header.Size;
        var member = parsed.Kind switch
        {
            MemberKind.Manifest => await ReadManifestAsync(name, size, cancellationToken).ConfigureAwait(false),
            MemberKind.DomainXml => await ReadDomainXmlAsync(name, size, cancellationToken).ConfigureAwait(false),
            MemberKind.Nvram => await ReadNvramAsync(parsed, size, cancellationToken).ConfigureAwait(false),
            MemberKind.TpmFile => await ReadTpmFileAsync(parsed, size, cancellationToken).ConfigureAwait(false),
            MemberKind.DiskMap => await ReadDiskMapAsync(parsed, size, cancellationToken).ConfigureAwait(false),
            MemberKind.DiskData => await ReadDiskDataAsync(parsed, size, cancellationToken).ConfigureAwait(false),
            MemberKind.Trailer => await ReadTrailerAsync(name, size, cancellationToken).ConfigureAwait(false),
            _ => throw Fail(name, "unknown member kind"),
        };
        _lastMember = name;
        return member;
    }

    private async Task<StreamMember> ReadManifestAsync(string name, long size, CancellationToken cancellationToken)
    {
        if (_stage != Stage.Manifest)
        {
            throw Fail(name, "the manifest must be the first member");
        }

        CheckSize(name, size, StreamRules.MaxManifestSize);
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        var manifest = StreamJson.DeserializeManifest(content, name);
        if (StreamRules.ManifestProblem(manifest) is { } problem)
        {
            throw Fail(name, problem);
        }

        if (manifest.Compression.MemberSize > _options.MaxMemberSize)
        {
            throw Fail(name, $"member size {manifest.Compression.MemberSize} is larger than this reader accepts ({_options.MaxMemberSize})");
        }

        _manifest = manifest;
        SetDecodeAhead(manifest.Compression.MemberSize);
        _manifestSha256 = Hash(content);
        AddEntry(name, size, size, _manifestSha256, null);
        _stage = Stage.DomainXml;
        return new ManifestMember(name, size, manifest, _manifestSha256);
    }

    private async Task<StreamMember> ReadDomainXmlAsync(string name, long size, CancellationToken cancellationToken)
    {
        if (_stage != Stage.DomainXml)
        {
            throw Fail(name, _stage == Stage.Manifest ? "the first member must be virtbackup/manifest.json" : "the domain XML must follow the manifest");
        }

        CheckSize(name, size, StreamRules.MaxDomainXmlSize);
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        var xml = StreamJson.DecodeUtf8(content, name);
        AddEntry(name, size, size, Hash(content), null);
        _stage = Stage.State;
        return new DomainXmlMember(name, size, xml);
    }

    private async Task<StreamMember> ReadNvramAsync(ParsedMemberName parsed, long size, CancellationToken cancellationToken)
    {
        var name = parsed.Name;
        ExpectStateStage(name);
        if (!_manifest!.NvramPresent)
        {
            throw Fail(name, "the manifest says there is no NVRAM");
        }

        if (_nvramSeen)
        {
            throw Fail(name, "a second NVRAM member");
        }

        if (_tpmCount > 0)
        {
            throw Fail(name, "the NVRAM must come before the TPM files");
        }

        CheckSize(name, size, StreamRules.MaxStateFileSize);
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        AddEntry(name, size, size, Hash(content), null);
        _nvramSeen = true;
        return new NvramMember(name, size, parsed.Path!, content);
    }

    private async Task<StreamMember> ReadTpmFileAsync(ParsedMemberName parsed, long size, CancellationToken cancellationToken)
    {
        var name = parsed.Name;
        ExpectStateStage(name);
        if (!_manifest!.Tpm.Present)
        {
            throw Fail(name, "the manifest says there is no TPM");
        }

        if (_manifest.NvramPresent && !_nvramSeen)
        {
            throw Fail(name, "the NVRAM member the manifest announces is missing (it must come before the TPM files)");
        }

        if (_lastTpmPath is not null && string.CompareOrdinal(parsed.Path, _lastTpmPath) <= 0)
        {
            throw Fail(name, $"TPM files out of order (must sort after 'state/tpm/{_lastTpmPath}')");
        }

        if (_tpmCount >= StreamRules.MaxTpmFiles)
        {
            throw Fail(name, $"more than {StreamRules.MaxTpmFiles} TPM files");
        }

        CheckSize(name, size, StreamRules.MaxStateFileSize);
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        AddEntry(name, size, size, Hash(content), null);
        _tpmCount++;
        _lastTpmPath = parsed.Path;
        return new TpmFileMember(name, size, parsed.Path!, content);
    }

    private async Task<StreamMember> ReadDiskMapAsync(ParsedMemberName parsed, long size, CancellationToken cancellationToken)
    {
        var name = parsed.Name;
        EnterDisks(name);
        var version = _manifest!.FormatVersion;
        var current = _disk is { IsComplete: false } open && open.MembersDone && open.Disk.Target == parsed.Target ? open : null;
        var (disk, diskIndex) = current is null ? StartingDisk(parsed) : (current.Disk, _nextDiskIndex - 1);
        var pieceIndex = current?.PiecesRead ?? 0;
        var expectedName = version >= 3
            ? MemberNames.DiskMapPiece(disk.Target, StreamRules.MapPieceRange(disk.VirtualSize, pieceIndex, version).Offset)
            : MemberNames.DiskMap(disk.Target, version);
        if (name != expectedName)
        {
            throw Fail(name, version >= 3
                ? $"map piece '{expectedName}' is missing (from version 3 a disk map comes in pieces of {StreamRules.MapPieceSize} bytes of the disk, in order)"
                : $"a version-{version} stream has its disk maps in '{expectedName}'");
        }

        CheckSize(name, size, StreamRules.MaxMapSize);
        var (map, sha256) = version >= 2
            ? await ReadMapTextAsync(name, size, cancellationToken).ConfigureAwait(false)
            : await ReadMapJsonAsync(name, size, cancellationToken).ConfigureAwait(false);
        if (map.Target != disk.Target)
        {
            throw Fail(name, $"map says target '{map.Target}'");
        }

        if (map.VirtualSize != disk.VirtualSize)
        {
            throw Fail(name, $"map says virtual size {map.VirtualSize}, the manifest {disk.VirtualSize}");
        }

        if (map.Extents is null || map.Extents.Count > size / (version >= 2 ? 6 : 16))
        {
            throw Fail(name, "map has no or too many extents");
        }

        var (start, end) = StreamRules.MapPieceRange(disk.VirtualSize, pieceIndex, version);
        if ((StreamRules.CanonicalMapProblem(map.Extents, disk.VirtualSize) ?? StreamRules.PieceRangeProblem(map.Extents, start, end)) is { } problem)
        {
            throw Fail(name, problem);
        }

        AddEntry(name, size, size, sha256, null);
        if (current is null)
        {
            _disk = current = new CurrentDisk(disk, StreamRules.MapPieceCount(disk.VirtualSize, version));
            _nextDiskIndex = diskIndex + 1;
        }

        current.StartPiece(StreamRules.Members(map.Extents, _manifest.Compression.MemberSize, version).GetEnumerator());
        return new DiskMapMember(name, size, disk, map, start, current.PiecesRead == current.PieceCount);
    }

    /// <summary>Checks that a map member may start disk <paramref name="parsed"/>'s target: the disk before is complete, this one is next.</summary>
    private (ManifestDisk Disk, int Index) StartingDisk(ParsedMemberName parsed)
    {
        var name = parsed.Name;
        if (_disk is { IsComplete: false } open)
        {
            throw Fail(name, $"disk '{open.Disk.Target}' is incomplete: member '{ExpectedDiskMember(open)}' is missing");
        }

        var disks = _manifest!.Disks;
        var index = -1;
        for (var i = 0; i < disks.Count; i++)
        {
            if (disks[i].Target == parsed.Target)
            {
                index = i;
            }
        }

        if (index < 0)
        {
            throw Fail(name, $"disk '{parsed.Target}' is not in the manifest");
        }

        if (disks[index].Excluded)
        {
            throw Fail(name, $"disk '{parsed.Target}' is excluded in the manifest and must have no members");
        }

        if (index < _nextDiskIndex)
        {
            throw Fail(name, "disk maps out of manifest order");
        }

        if (NextDiskIndex() is var next and >= 0 && next != index)
        {
            throw Fail(name, $"the map of disk '{disks[next].Target}' is missing (disks come in manifest order)");
        }

        return (disks[index], index);
    }

    private async Task<(DiskMap Map, string Sha256)> ReadMapJsonAsync(string name, long size, CancellationToken cancellationToken)
    {
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        return (StreamJson.DeserializeMap(content, name), Hash(content));
    }

    /// <summary>Version 2: the map text parsed and hashed as it is read, in pieces (no whole-map bytes in memory).</summary>
    private async Task<(DiskMap Map, string Sha256)> ReadMapTextAsync(string name, long size, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var parser = new DiskMapText.Parser(name);
        var buffer = new byte[(int)Math.Min(size, 64 * 1024)];
        for (var left = size; left > 0;)
        {
            var piece = buffer.AsMemory(0, (int)Math.Min(left, buffer.Length));
            await ReadExactlyAsync(name, piece, cancellationToken).ConfigureAwait(false);
            sha.AppendData(piece.Span);
            parser.Feed(piece.Span);
            left -= piece.Length;
        }

        await ReadPaddingAsync(name, size, cancellationToken).ConfigureAwait(false);
        return (parser.Finish(), BackupStreamWriter.Hex(sha.GetHashAndReset()));
    }

    private async Task<StreamMember> ReadTrailerAsync(string name, long size, CancellationToken cancellationToken)
    {
        EnterDisks(name);
        if (_disk is { IsComplete: false } open)
        {
            throw Fail(name, $"disk '{open.Disk.Target}' is incomplete: member '{ExpectedDiskMember(open)}' is missing");
        }

        if (NextDiskIndex() is var next and >= 0)
        {
            throw Fail(name, $"the map of disk '{_manifest!.Disks[next].Target}' is missing");
        }

        CheckSize(name, size, MaxTrailerBaseSize + (long)MaxTrailerBytesPerMember * _entries.Count);
        var content = await ReadContentAsync(name, size, cancellationToken).ConfigureAwait(false);
        await FinishAllDecodesAsync().ConfigureAwait(false);
        var trailer = CheckTrailer(name, content);
        await ReadEndOfArchiveAsync(cancellationToken).ConfigureAwait(false);
        _stage = Stage.Done;
        return new TrailerMember(name, size, trailer);
    }

    private Trailer CheckTrailer(string name, byte[] content)
    {
        var actual = StreamJson.DeserializeTrailer(content, name);
        if (actual.FormatVersion != _manifest!.FormatVersion)
        {
            throw Fail(name, $"trailer format version {actual.FormatVersion} is not the manifest's {_manifest.FormatVersion}");
        }

        if (actual.ManifestSha256 != _manifestSha256)
        {
            throw Fail(name, $"trailer belongs to another manifest (manifestSha256 {actual.ManifestSha256}, the stream's manifest has {_manifestSha256})");
        }

        var m = _manifest!;
        if (actual.DomainUuid != m.DomainUuid || actual.ChainId != m.ChainId || actual.Checkpoint != m.Checkpoint)
        {
            throw Fail(name, "trailer's domainUuid/chainId/checkpoint differ from the manifest's");
        }

        var listed = actual.Members ?? [];
        var proven = new List<TrailerEntry>(_entries.Count);
        for (var i = 0; i < Math.Max(listed.Count, _entries.Count); i++)
        {
            if (i >= listed.Count)
            {
                throw Fail(_entries[i].Name, "member is in the stream but missing from the trailer");
            }

            var claimed = listed[i];
            if (claimed is null)
            {
                throw Fail(name, $"trailer entry {i} is null");
            }

            if (i >= _entries.Count)
            {
                throw Fail(claimed.Name, "member is listed in the trailer but missing from the stream");
            }

            var seen = _entries[i];
            if (claimed.Name != seen.Name)
            {
                var listedElsewhere = listed.Any(e => e?.Name == seen.Name);
                throw Fail(seen.Name, listedElsewhere
                    ? $"member order differs from the trailer (trailer lists '{claimed.Name}' at this position)"
                    : "member is in the stream but missing from the trailer");
            }
            if (claimed.StoredSize != seen.StoredSize)
            {
                throw Fail(seen.Name, $"stored size {seen.StoredSize} differs from the trailer's {claimed.StoredSize}");
            }

            if (claimed.Size != seen.Size)
            {
                throw Fail(seen.Name, $"size {seen.Size} differs from the trailer's {claimed.Size}");
            }

            if (claimed.StoredSha256 != seen.StoredSha256)
            {
                throw Fail(seen.Name, $"SHA-256 of the stored bytes is {seen.StoredSha256 ?? "(none)"}, the trailer says {claimed.StoredSha256 ?? "(none)"}");
            }
            // Without decoding, the SHA-256 of zstd content (versions 1 to 3) is unknown: it is the one thing taken
            // from the trailer. From version 4 a zstd member has none (null), and neither may the trailer.
            if (seen.Sha256 is { Length: 0 })
            {
                seen = seen with { Sha256 = claimed.Sha256 ?? "" };
            }
            else if (claimed.Sha256 != seen.Sha256)
            {
                throw Fail(seen.Name, seen.Sha256 is null
                    ? $"the trailer gives a content SHA-256, which a zstd member of format version {m.FormatVersion} does not have"
                    : claimed.Sha256 is null
                        ? $"the trailer gives no content SHA-256, which this member of format version {m.FormatVersion} must have"
                        : $"SHA-256 of the content is {seen.Sha256}, the trailer says {claimed.Sha256}: the member is corrupt");
            }

            proven.Add(seen);
        }
        var expected = Trailer.Create(m, _manifestSha256, proven);
        if (actual.MemberCount != expected.MemberCount)
        {
            throw Fail(name, $"memberCount {actual.MemberCount} differs from the {expected.MemberCount} members in the stream");
        }

        if (actual.TotalStoredBytes != expected.TotalStoredBytes || actual.TotalBytes != expected.TotalBytes)
        {
            throw Fail(name, "totalStoredBytes/totalBytes differ from the members in the stream");
        }

        if (!StreamJson.Serialize(expected).AsSpan().SequenceEqual(content))
        {
            throw Fail(name, "trailer is not in the canonical form the writer produces");
        }

        return expected;
    }

    /// <summary>After the trailer: at least the two zero blocks of the end-of-archive, then only zero blocks.</summary>
    private async Task ReadEndOfArchiveAsync(CancellationToken cancellationToken)
    {
        if (_options.StopAtEndOfArchive)
        {
            await ReadEndOfThisArchiveAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        const string who = MemberNames.Trailer;
        var start = _position;
        var buffer = new byte[64 * 1024];
        long zeros = 0;
        while (true)
        {
            var got = await ReadUpToAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (got == 0)
            {
                break;
            }

            var nonZero = buffer.AsSpan(0, got).IndexOfAnyExcept((byte)0);
            if (nonZero >= 0)
            {
                var at = start + zeros + nonZero;
                var culprit = who;
                if ((at - start) % TarHeader.BlockSize == 0 && nonZero + TarHeader.BlockSize <= got)
                {
                    var raw = TarHeader.Inspect(buffer.AsSpan(nonZero, TarHeader.BlockSize));
                    if (raw.ChecksumOk && raw.NameIsPrintableAscii && raw.Name.Length > 0)
                    {
                        culprit = raw.Name;
                    }
                }
                throw Fail(culprit, culprit == who
                    ? $"data after the trailer at byte {at}: only end-of-archive zero blocks may follow the trailer"
                    : "member after the trailer: the trailer must be the last member", at);
            }
            zeros += got;
            if (zeros > _options.MaxTrailingZeroBytes)
            {
                throw Fail(who, $"more than {_options.MaxTrailingZeroBytes} zero bytes after the trailer", start);
            }
        }
        if (zeros < 2 * TarHeader.BlockSize)
        {
            throw Fail(who, "the stream ends without the two end-of-archive zero blocks after the trailer: it is truncated", start + zeros);
        }

        if (zeros % TarHeader.BlockSize != 0)
        {
            throw Fail(who, "the stream does not end on a 512-byte block boundary after the trailer", start + zeros);
        }
    }

    // ---- order helpers ------------------------------------------------------------------------------

    private void ExpectStateStage(string name)
    {
        if (_stage == Stage.State)
        {
            return;
        }

        throw Fail(name, _stage switch
        {
            Stage.Manifest => "the first member must be virtbackup/manifest.json",
            Stage.DomainXml => "virtbackup/domain.xml must follow the manifest",
            _ => "NVRAM and TPM files must come before the disks",
        });
    }

    /// <summary>Checks that everything before the disks is there, for a map or the trailer named <paramref name="name"/>.</summary>
    private void EnterDisks(string name)
    {
        if (_stage == Stage.Disks)
        {
            return;
        }

        ExpectStateStage(name);
        if (_manifest!.NvramPresent && !_nvramSeen)
        {
            throw Fail(name, "the NVRAM member the manifest announces is missing");
        }

        if (_manifest.Tpm.Present && _tpmCount == 0)
        {
            throw Fail(name, "the TPM state the manifest announces is missing");
        }

        _stage = Stage.Disks;
    }

    private int NextDiskIndex()
    {
        for (var i = _nextDiskIndex; i < _manifest!.Disks.Count; i++)
        {
            if (!_manifest.Disks[i].Excluded)
            {
                return i;
            }
        }

        return -1;
    }

    private string ExpectedDataName(CurrentDisk disk) =>
        MemberNames.DiskData(disk.Disk.Target, disk.Members.Current.Offset, _manifest!.Compression.Algorithm);

    /// <summary>The member an incomplete disk needs next: its next data member, or its next map piece.</summary>
    private string ExpectedDiskMember(CurrentDisk disk) => disk.MembersDone
        ? MemberNames.DiskMapPiece(disk.Disk.Target, StreamRules.MapPieceRange(disk.Disk.VirtualSize, disk.PiecesRead, _manifest!.FormatVersion).Offset)
        : ExpectedDataName(disk);

    private void CheckSize(string name, long size, long max)
    {
        if (size > max)
        {
            throw Fail(name, $"member of {size} bytes is larger than the {max} bytes allowed for it");
        }
    }

    private void AddEntry(string name, long storedSize, long size, string? sha256, string? storedSha256) =>
        _entries.Add(new TrailerEntry(name, storedSize, size, sha256 ?? "", storedSha256));

    // ---- input --------------------------------------------------------------------------------------

    private async Task<byte[]> ReadContentAsync(string name, long size, CancellationToken cancellationToken)
    {
        var content = new byte[size];
        await ReadExactlyAsync(name, content, cancellationToken).ConfigureAwait(false);
        await ReadPaddingAsync(name, size, cancellationToken).ConfigureAwait(false);
        return content;
    }

    private async Task ReadPaddingAsync(string name, long size, CancellationToken cancellationToken)
    {
        var padding = TarHeader.PaddingFor(size);
        if (padding == 0)
        {
            return;
        }

        var pad = _block.AsMemory(0, padding);
        var at = _position;
        await ReadExactlyAsync(name, pad, cancellationToken).ConfigureAwait(false);
        if (pad.Span.ContainsAnyExcept((byte)0))
        {
            throw Fail(name, "non-zero bytes in the padding after the member's content", at);
        }
    }

    private async Task ReadExactlyAsync(string name, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var at = _position;
        var got = await ReadUpToAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (got < buffer.Length)
        {
            throw Fail(name, $"the stream ends inside this member ({got} of {buffer.Length} bytes read): it is truncated", at);
        }
    }

    private async Task<int> ReadUpToAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var got = await _input.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += got;
        return got;
    }

    // ---- errors -------------------------------------------------------------------------------------

    private string After() => _lastMember is null ? "(start of stream)" : $"(the header after '{_lastMember}')";

    /// <summary>The name (or pattern) of the member that should come next, for "missing" messages.</summary>
    private string ExpectedNext()
    {
        switch (_stage)
        {
            case Stage.Manifest: return MemberNames.Manifest;
            case Stage.DomainXml: return MemberNames.DomainXml;
            case Stage.State when _manifest!.NvramPresent && !_nvramSeen: return MemberNames.NvramPrefix + "*";
            case Stage.State when _manifest!.Tpm.Present && _tpmCount == 0: return MemberNames.TpmPrefix + "*";
        }
        if (_disk is { IsComplete: false } open)
        {
            return ExpectedDiskMember(open);
        }

        return NextDiskIndex() is var next and >= 0 ? MemberNames.DiskMap(_manifest!.Disks[next].Target, _manifest.FormatVersion) : MemberNames.Trailer;
    }

    private static StreamFormatException Fail(string member, string problem, long? at = null) => new(member, problem, at);

    private static string Hash(ReadOnlySpan<byte> content) => BackupStreamWriter.Hex(SHA256.HashData(content));
}
