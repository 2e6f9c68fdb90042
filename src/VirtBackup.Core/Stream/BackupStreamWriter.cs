using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Threading.Channels;

namespace VirtBackup.Core.Stream;

/// <summary>
/// Writes a VirtBackup stream (a ustar tar stream) to an unseekable output, enforcing the member order:
/// manifest, domain XML, NVRAM (iff the manifest says so), TPM files (iff the manifest says so; sorted,
/// at least one), then for every non-excluded disk in manifest order its map and its data, then the trailer
/// (<see cref="CompleteAsync"/>). Anything else throws before a byte of it is written.
/// <para>
/// Disk data: after <see cref="WriteDiskMapAsync"/>, pass the bytes of the map's data extents in order with
/// <see cref="WriteDiskDataAsync"/>, in calls of any size, each continuing exactly where the previous ended
/// (or at the start of the next data extent) and never running past the end of its data extent. The writer cuts
/// members at every multiple of the member size itself, so the member layout depends only on the map; it copies
/// the bytes, so the caller may reuse its buffer as soon as the call returns. Members are compressed and hashed
/// in parallel (<see cref="StreamWriterOptions.MaxParallelism"/>) and written in order by a background loop.
/// </para>
/// <para>
/// Errors of the output (e.g. <see cref="IOException"/> for EPIPE when the consumer goes away) are rethrown
/// unchanged from the next call. After any failure the writer is faulted and never writes a trailer, so a
/// failed backup can never look complete. The output stream is flushed but not disposed.
/// </para>
/// </summary>
public sealed partial class BackupStreamWriter : IAsyncDisposable
{
    private enum Stage { Start, Manifest, DomainXml, Nvram, Tpm, Disks, Completed }

    private readonly System.IO.Stream _output;
    private readonly StreamWriterOptions _options;
    private readonly Channel<Task<ReadyMember>> _queue;
    private readonly Task _drain;
    private readonly CancellationTokenSource _abort = new();
    private readonly List<TrailerEntry> _entries = [];
    private readonly BufferPool _slotPool;
    private readonly BufferPool? _framePool;
    private volatile ExceptionDispatchInfo? _outputFault;
    private Exception? _callerFault;
    private int _busy;
    private bool _disposed;

    private Stage _stage = Stage.Start;
    private Manifest? _manifest;
    private string _manifestSha256 = "";
    private string? _lastTpmPath;
    private int _nextDiskIndex;
    private DiskState? _disk;

    public BackupStreamWriter(System.IO.Stream output, StreamWriterOptions options)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        if (!output.CanWrite)
        {
            throw new ArgumentException("The output stream is not writable.", nameof(output));
        }

        if (StreamRules.CompressionProblem(CompressionInfo.From(options)) is { } problem)
        {
            throw new ArgumentException($"Invalid writer options: {problem}.", nameof(options));
        }

        if (options.MaxParallelism < 1)
        {
            throw new ArgumentException("MaxParallelism must be at least 1.", nameof(options));
        }

        _output = output;
        _options = options;
        var parallelism = options.MaxParallelism;
        _queue = Channel.CreateBounded<Task<ReadyMember>>(new BoundedChannelOptions(parallelism)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        // Buffers: one being filled, `parallelism` queued, one awaited by the loop and one being written.
        var retained = parallelism + 3;
        _slotPool = new BufferPool(TarHeader.BlockSize + options.MemberSize + TarHeader.BlockSize, retained);
        if (options.Compression == Compression.Zstd)
        {
            _framePool = new BufferPool(TarHeader.BlockSize + ZstdFrames.CompressBound(options.MemberSize) + TarHeader.BlockSize, retained);
        }

        _drain = Task.Run(DrainAsync);
    }

    /// <summary>
    /// Loads what the first member needs on the thread pool (OpenSSL behind SHA-256, libzstd), a few ms a short backup
    /// would otherwise wait for after its pause; start it early. Failures are left to the first real use. Await it
    /// before the process may exit, whatever happened: an exit while OpenSSL initializes on another thread crashes
    /// the process (libcrypto's exit handlers pull the library from under that thread).
    /// </summary>
    public static Task WarmUpAsync() => Task.Run(() =>
    {
        try
        {
            SHA256.HashData(ReadOnlySpan<byte>.Empty);
            _ = NativeZstd.IsAvailable;
        }
        catch (CryptographicException)
        {
            // No usable OpenSSL: the first member's hash reports it, with its context.
        }
    });

    /// <summary>True once <see cref="CompleteAsync"/> has written the trailer and flushed the output.</summary>
    public bool IsCompleted => _stage == Stage.Completed;

    /// <summary>Writes <c>virtbackup/manifest.json</c>. Must be first; its compression must equal the options'.</summary>
    public Task WriteManifestAsync(Manifest manifest, CancellationToken cancellationToken) => Run(() =>
    {
        ArgumentNullException.ThrowIfNull(manifest);
        Expect(_stage == Stage.Start, "The manifest must be the first member and written once.");
        if (StreamRules.ManifestProblem(manifest) is { } problem)
        {
            throw new ArgumentException($"Invalid manifest: {problem}.", nameof(manifest));
        }

        if (manifest.Compression != CompressionInfo.From(_options))
        {
            throw new ArgumentException(
                $"Manifest compression {manifest.Compression} differs from the writer's {CompressionInfo.From(_options)}.", nameof(manifest));
        }

        var json = StreamJson.Serialize(manifest);
        if (json.Length > StreamRules.MaxManifestSize)
        {
            throw new ArgumentException($"The manifest is larger than {StreamRules.MaxManifestSize} bytes.", nameof(manifest));
        }

        return () =>
        {
            _manifest = manifest;
            _manifestSha256 = Hex(SHA256.HashData(json));
            _stage = Stage.Manifest;
            return EnqueueSmallAsync(MemberNames.Manifest, json, cancellationToken);
        };
    });

    /// <summary>Writes <c>virtbackup/domain.xml</c> (UTF-8, no BOM) right after the manifest.</summary>
    public Task WriteDomainXmlAsync(string xml, CancellationToken cancellationToken) => Run(() =>
    {
        ArgumentNullException.ThrowIfNull(xml);
        Expect(_stage == Stage.Manifest, "The domain XML must follow the manifest and be written once.");
        var bytes = StreamJson.Utf8(xml);
        if (bytes.Length > StreamRules.MaxDomainXmlSize)
        {
            throw new ArgumentException($"The domain XML is larger than {StreamRules.MaxDomainXmlSize} bytes.", nameof(xml));
        }

        return () =>
        {
            _stage = Stage.DomainXml;
            return EnqueueSmallAsync(MemberNames.DomainXml, bytes, cancellationToken);
        };
    });

    /// <summary>Writes <c>state/nvram/&lt;fileName&gt;</c>, once, after the domain XML, iff the manifest says NVRAM is present.</summary>
    public Task WriteNvramAsync(string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) => Run(() =>
    {
        Expect(_stage == Stage.DomainXml && _manifest!.NvramPresent,
            _manifest?.NvramPresent == false
                ? "The manifest says there is no NVRAM."
                : "The NVRAM must follow the domain XML and be written once.");
        var name = MemberNames.Nvram(fileName);
        CheckStateFileSize(content.Length, name);
        var bytes = content.ToArray();
        return () =>
        {
            _stage = Stage.Nvram;
            return EnqueueSmallAsync(name, bytes, cancellationToken);
        };
    });

    /// <summary>
    /// Writes <c>state/tpm/&lt;relativePath&gt;</c>, after the domain XML and NVRAM, iff the manifest says a TPM is
    /// present. Paths must come in strictly increasing ordinal order (e.g. sorted with <see cref="StringComparer.Ordinal"/>).
    /// </summary>
    public Task WriteTpmFileAsync(string relativePath, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) => Run(() =>
    {
        Expect(_manifest is { Tpm.Present: true }, _manifest is null ? "The manifest must come first." : "The manifest says there is no TPM.");
        Expect(_stage == Stage.Tpm || (_stage == Stage.DomainXml && !_manifest!.NvramPresent) || _stage == Stage.Nvram,
            _stage == Stage.DomainXml ? "The NVRAM must be written before the TPM files." : "TPM files must come after the domain XML and NVRAM and before the disks.");
        var name = MemberNames.TpmFile(relativePath);
        if (_lastTpmPath is not null && string.CompareOrdinal(relativePath, _lastTpmPath) <= 0)
        {
            throw new ArgumentException($"TPM file '{relativePath}' does not come after '{_lastTpmPath}' in ordinal order.", nameof(relativePath));
        }

        CheckStateFileSize(content.Length, name);
        var bytes = content.ToArray();
        return () =>
        {
            _stage = Stage.Tpm;
            _lastTpmPath = relativePath;
            return EnqueueSmallAsync(name, bytes, cancellationToken);
        };
    });

    /// <summary>
    /// Writes the map of the next non-excluded disk of the manifest (<c>disks/&lt;target&gt;/extents.txt</c>; version 1:
    /// <c>extents.json</c>; from version 3: its pieces <c>extents-&lt;offset&gt;.txt</c>, each written as the data reaches it).
    /// Extents must be sorted, non-overlapping, non-empty and inside the disk; adjacent extents of the same kind are
    /// merged. An <see cref="ExtentList"/> that is canonical is kept as it is (not copied) until the disk's data is written.
    /// </summary>
    public Task WriteDiskMapAsync(string target, IReadOnlyList<DiskExtent> extents, CancellationToken cancellationToken) => Run(() =>
    {
        ArgumentNullException.ThrowIfNull(extents);
        var (diskIndex, manifestDisk) = NextDiskFor(target);
        var normalized = StreamRules.Normalize(extents, manifestDisk.VirtualSize, out var problem)
            ?? throw new ArgumentException($"Invalid extents for disk '{target}': {problem}.", nameof(extents));
        var version = _manifest!.FormatVersion;
        var map = new DiskMap(target, manifestDisk.VirtualSize, normalized);
        var mapSize = version switch { < 2 => StreamJson.Serialize(map).Length, 2 => new DiskMapText.Text(map).Size, _ => 0 };
        if (mapSize > StreamRules.MaxMapSize)
        {
            throw new ArgumentException($"The map of disk '{target}' is larger than {StreamRules.MaxMapSize} bytes.", nameof(extents));
        }

        return () =>
        {
            _stage = Stage.Disks;
            _nextDiskIndex = diskIndex + 1;
            _disk = new DiskState(target, manifestDisk.VirtualSize, version, _options.MemberSize, normalized);
            return EmitPiecesAsync(_disk, cancellationToken);
        };
    });

    /// <summary>
    /// From version 3: writes the next piece of a disk's map, for a caller that learns the map as it goes (the backup maps the
    /// disk while it reads data). The first piece of a disk starts the next non-excluded disk of the manifest; then piece
    /// after piece (<see cref="StreamRules.MapPieceCount"/> in all), each given once the data of the one before is
    /// written. <paramref name="extents"/> must lie inside the piece's range (<see cref="StreamRules.MapPieceRange"/>).
    /// </summary>
    public Task WriteDiskMapPieceAsync(string target, IReadOnlyList<DiskExtent> extents, CancellationToken cancellationToken) => Run(() =>
    {
        ArgumentNullException.ThrowIfNull(extents);
        var version = _manifest?.FormatVersion ?? 0;
        Expect(version >= 3, "Map pieces exist in streams of format version 3 and later only.");
        var disk = _disk is { IsComplete: false, NeedsPiece: true } current && current.Target == target ? current : null;
        if (disk is null && _disk is { IsComplete: false } open)
        {
            throw new InvalidOperationException(open.NeedsPiece
                ? $"Disk '{open.Target}' needs its next map piece, not one of '{target}'."
                : $"Disk '{open.Target}' still needs data at offset {open.NextOffset} before its next map piece.");
        }

        var (diskIndex, manifestDisk) = disk is null ? NextDiskFor(target) : (-1, null);
        var virtualSize = disk?.VirtualSize ?? manifestDisk!.VirtualSize;
        var index = disk?.PiecesGiven ?? 0;
        var (start, end) = StreamRules.MapPieceRange(virtualSize, index, version);
        var normalized = StreamRules.Normalize(extents, virtualSize, out var problem) is { } list
            && StreamRules.PieceRangeProblem(list, start, end) is var outside
            ? outside is null ? list : throw new ArgumentException($"Invalid map piece {index} of disk '{target}': {outside}.", nameof(extents))
            : throw new ArgumentException($"Invalid extents for disk '{target}': {problem}.", nameof(extents));
        if (new DiskMapText.Text(new DiskMap(target, virtualSize, normalized)).Size > StreamRules.MaxMapSize)
        {
            throw new ArgumentException($"Map piece {index} of disk '{target}' is larger than {StreamRules.MaxMapSize} bytes.", nameof(extents));
        }

        return () =>
        {
            if (disk is null)
            {
                _stage = Stage.Disks;
                _nextDiskIndex = diskIndex + 1;
                disk = _disk = new DiskState(target, virtualSize, version, _options.MemberSize, null);
            }

            disk.Give(normalized);
            return EmitPiecesAsync(disk, cancellationToken);
        };
    });

    /// <summary>Checks that <paramref name="target"/> is the next disk to start and that the one before is complete.</summary>
    private (int Index, ManifestDisk Disk) NextDiskFor(string target)
    {
        ExpectBeforeDisks();
        if (_disk is { IsComplete: false })
        {
            throw new InvalidOperationException(_disk.NeedsPiece
                ? $"Disk '{_disk.Target}' still needs map pieces before the next disk can start."
                : $"Disk '{_disk.Target}' still needs data at offset {_disk.NextOffset} before the next disk can start.");
        }

        var diskIndex = NextDiskIndex();
        if (diskIndex < 0)
        {
            throw new InvalidOperationException($"All disks of the manifest already have their map; '{target}' is not expected.");
        }

        var manifestDisk = _manifest!.Disks[diskIndex];
        if (manifestDisk.Target != target)
        {
            throw new InvalidOperationException($"The next disk in manifest order is '{manifestDisk.Target}', not '{target}'.");
        }

        return (diskIndex, manifestDisk);
    }

    /// <summary>
    /// Writes the map members that are due: while the current piece needs no more data and the next piece is known, that
    /// piece's member (so a piece always comes right after the data of the one before, and before its own data).
    /// </summary>
    private async Task EmitPiecesAsync(DiskState disk, CancellationToken cancellationToken)
    {
        while (disk.NextPiece() is { } piece)
        {
            var map = new DiskMap(disk.Target, disk.VirtualSize, piece.Extents);
            if (disk.Version < 2)
            {
                await EnqueueSmallAsync(MemberNames.DiskMap(disk.Target, 1), StreamJson.Serialize(map), cancellationToken).ConfigureAwait(false);
                continue;
            }

            var text = new DiskMapText.Text(map);
            if (text.Size > StreamRules.MaxMapSize)
            {
                throw new ArgumentException($"The map of disk '{disk.Target}' is larger than {StreamRules.MaxMapSize} bytes.");
            }

            var name = disk.Version >= 3 ? MemberNames.DiskMapPiece(disk.Target, piece.Start) : MemberNames.DiskMap(disk.Target, disk.Version);
            await EnqueueMapTextAsync(name, text, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds bytes of the current disk's data extents, starting at byte <paramref name="offset"/> of the disk.
    /// See the class remarks for the rules; empty data is ignored.
    /// </summary>
    public Task WriteDiskDataAsync(string target, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => Run(() =>
    {
        var disk = _disk;
        if (disk is null || disk.Target != target || _stage != Stage.Disks)
        {
            throw new InvalidOperationException($"Disk data for '{target}' must follow that disk's map (current disk: '{disk?.Target ?? "none"}').");
        }

        if (data.IsEmpty)
        {
            return () => Task.CompletedTask;
        }

        if (disk.NeedsPiece)
        {
            throw new InvalidOperationException($"Disk '{target}' needs its next map piece before more data (got data at offset {offset}).");
        }

        if (disk.IsComplete)
        {
            throw new ArgumentException($"All data extents of disk '{target}' are already written; got data at offset {offset}.", nameof(offset));
        }

        if (offset != disk.NextOffset)
        {
            throw new ArgumentException($"Data for disk '{target}' must continue at offset {disk.NextOffset}; got offset {offset}.", nameof(offset));
        }

        if (data.Length > disk.ExtentEnd - offset)
        {
            throw new ArgumentException(
                $"Data for disk '{target}' at offset {offset} (+{data.Length}) runs past the end of its data extent at {disk.ExtentEnd}.", nameof(data));
        }

        return () => AppendDiskDataAsync(disk, data, cancellationToken);
    });

    /// <summary>
    /// Writes the trailer and the end-of-archive blocks and flushes the output. Only after this returns is the
    /// stream complete. Requires every member the manifest announced.
    /// </summary>
    public Task CompleteAsync(CancellationToken cancellationToken) => Run(() =>
    {
        ExpectBeforeDisks();
        if (_disk is { IsComplete: false })
        {
            throw new InvalidOperationException(_disk.NeedsPiece
                ? $"Disk '{_disk.Target}' still needs map pieces."
                : $"Disk '{_disk.Target}' still needs data at offset {_disk.NextOffset}.");
        }

        if (NextDiskIndex() is var missing and >= 0)
        {
            throw new InvalidOperationException($"Disk '{_manifest!.Disks[missing].Target}' has no map yet.");
        }

        return () => FinishAsync(cancellationToken);
    });

    /// <summary>
    /// Releases the writer. If <see cref="CompleteAsync"/> did not succeed, pending members are dropped and no
    /// trailer is written: the output is left as an incomplete stream that every reader refuses.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_stage == Stage.Completed)
        {
            _abort.Dispose();
            return;
        }
        _callerFault ??= new ObjectDisposedException(nameof(BackupStreamWriter));
        _queue.Writer.TryComplete();
        await _abort.CancelAsync().ConfigureAwait(false);
        try
        {
            await _drain.ConfigureAwait(false);
        }
        catch
        {
            // The stream is incomplete anyway; failures were reported to the caller already.
        }
        _abort.Dispose();
    }

    // ---- state checks -------------------------------------------------------------------------------

    private static void Expect(bool condition, string message)
    {
        if (!condition)
        {
            throw new InvalidOperationException(message);
        }
    }

    private void ExpectBeforeDisks()
    {
        Expect(_stage >= Stage.DomainXml, _stage == Stage.Start ? "The manifest must come first." : "The domain XML must be written before the disks.");
        Expect(!_manifest!.NvramPresent || _stage >= Stage.Nvram, "The manifest announces NVRAM but none was written.");
        Expect(!_manifest.Tpm.Present || _stage >= Stage.Tpm, "The manifest announces a TPM but no TPM file was written.");
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

    private static void CheckStateFileSize(int length, string name)
    {
        if (length > StreamRules.MaxStateFileSize)
        {
            throw new ArgumentException($"'{name}' is larger than {StreamRules.MaxStateFileSize} bytes.");
        }
    }

    /// <summary>
    /// Runs a public operation: <paramref name="validate"/> checks arguments and state (its exceptions leave the
    /// writer usable) and returns the action that changes state and writes (any exception of which faults the writer).
    /// </summary>
    private async Task Run(Func<Func<Task>> validate)
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException("BackupStreamWriter does not support concurrent calls.");
        }

        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFaulted();
            Expect(_stage != Stage.Completed, "The stream is already complete.");
            var action = validate();
            try
            {
                await action().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _callerFault ??= e;
                throw;
            }
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private void ThrowIfFaulted()
    {
        _outputFault?.Throw();
        if (_callerFault is { } e)
        {
            throw new InvalidOperationException("The writer failed earlier; the stream is incomplete and cannot be continued.", e);
        }
    }

    // ---- members ------------------------------------------------------------------------------------

    /// <summary>
    /// The current disk's progress: through its map pieces (one in versions 1 and 2), and through the members the current
    /// piece implies: the member being filled (<see cref="Plan"/>), its segment being filled and how far;
    /// <see cref="ExtentEnd"/> is the end of the data extent data continues in. A whole map (<paramref name="whole"/>) is
    /// cut into its pieces as each is written; a map given piece by piece comes through <see cref="Give"/>.
    /// </summary>
    private sealed class DiskState(string target, long virtualSize, int version, int memberSize, IReadOnlyList<DiskExtent>? whole)
    {
        private readonly int _pieceCount = StreamRules.MapPieceCount(virtualSize, version);
        private ExtentList? _given;
        private int _wholeNext;
        private IReadOnlyList<DiskExtent> _extents = [];
        private IEnumerator<MemberPlan>? _members;
        private int _extent;

        public string Target { get; } = target;
        public long VirtualSize { get; } = virtualSize;
        public int Version { get; } = version;
        public int PiecesGiven { get; private set; } = whole is null ? 0 : StreamRules.MapPieceCount(virtualSize, version);
        public int PiecesWritten { get; private set; }

        /// <summary>The current piece needs no more data and the next piece is not known yet.</summary>
        public bool NeedsPiece => MembersDone && PiecesWritten == PiecesGiven && PiecesGiven < _pieceCount;
        public bool IsComplete => MembersDone && PiecesWritten == _pieceCount;
        private bool MembersDone { get; set; } = true;
        public MemberPlan Plan => _members!.Current;
        public int Segment { get; private set; }
        public int SegmentFilled { get; private set; }
        public byte[]? Slot { get; set; }
        public bool IsFresh => Segment == 0 && SegmentFilled == 0;
        public int ContentFilled => Plan.Segments[Segment].ContentOffset + SegmentFilled;
        public long NextOffset => MembersDone ? -1 : Plan.Segments[Segment].DiskOffset + SegmentFilled;

        /// <summary>
        /// The end of the data extent data continues in: of the whole map when there is one (a call may run on across
        /// a piece boundary: the writer cuts it there), else of the current piece.
        /// </summary>
        public long ExtentEnd
        {
            get
            {
                var next = NextOffset;
                var extents = whole ?? _extents;
                while (extents[_extent].Zero || extents[_extent].End <= next)
                {
                    _extent++;
                }

                return extents[_extent].End;
            }
        }

        public void Give(ExtentList piece)
        {
            _given = piece;
            PiecesGiven++;
        }

        /// <summary>The next piece to write when one is due (the current one needs no more data), now current; else null.</summary>
        public (long Start, IReadOnlyList<DiskExtent> Extents)? NextPiece()
        {
            if (!MembersDone || PiecesWritten == PiecesGiven)
            {
                return null;
            }

            var (start, end) = StreamRules.MapPieceRange(VirtualSize, PiecesWritten, Version);
            var extents = whole is null ? _given! : _pieceCount == 1 ? whole : StreamRules.Slice(whole, start, end, ref _wholeNext);
            _given = null;
            PiecesWritten++;
            _extents = extents;
            _extent = whole is null ? 0 : _extent;
            _members = StreamRules.Members(extents, memberSize, Version).GetEnumerator();
            MembersDone = !_members.MoveNext();
            return (start, extents);
        }

        /// <summary>Counts <paramref name="n"/> bytes of the current segment as filled; true when the member is full.</summary>
        public bool Fill(int n)
        {
            SegmentFilled += n;
            if (SegmentFilled < Plan.Segments[Segment].Length)
            {
                return false;
            }

            Segment++;
            SegmentFilled = 0;
            return Segment == Plan.Segments.Count;
        }

        public void Advance()
        {
            Slot = null;
            Segment = 0;
            SegmentFilled = 0;
            MembersDone = !_members!.MoveNext();
        }
    }

    /// <summary>
    /// A member ready to be written: header, stored bytes and zero padding contiguous in one buffer; or a piece of a
    /// member written in several (the map text): only its last piece has the <see cref="Entry"/>.
    /// </summary>
    private sealed record ReadyMember(byte[] Buffer, int Length, TrailerEntry? Entry, BufferPool? Pool)
    {
        public void Release() => Pool?.Return(Buffer);
    }

    private async Task AppendDiskDataAsync(DiskState disk, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var plan = disk.Plan;
            var segment = plan.Segments[disk.Segment];
            disk.Slot ??= _slotPool.Rent();
            var n = Math.Min(data.Length, segment.Length - disk.SegmentFilled);
            data.Span[..n].CopyTo(disk.Slot.AsSpan(TarHeader.BlockSize + segment.ContentOffset + disk.SegmentFilled, n));
            data = data[n..];
            if (disk.Fill(n))
            {
                var slot = disk.Slot;
                var name = MemberNames.DiskData(disk.Target, plan.Offset, _options.Compression);
                var length = plan.Length;
                disk.Advance();
                var work = _options.Compression == Compression.Zstd
                    ? Task.Run(() => BuildZstdMember(name, slot, length, plan.Segments), CancellationToken.None)
                    : Task.Run(() => BuildRawMember(name, slot, length), CancellationToken.None);
                await EnqueueAsync(work, cancellationToken).ConfigureAwait(false);
                await EmitPiecesAsync(disk, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private ReadyMember BuildRawMember(string name, byte[] slot, int length)
    {
        var sha = Hex(SHA256.HashData(slot.AsSpan(TarHeader.BlockSize, length)));
        var total = Frame(slot, name, length);
        return new ReadyMember(slot, total, new TrailerEntry(name, length, length, sha, null), _slotPool);
    }

    private ReadyMember BuildZstdMember(string name, byte[] slot, int length, IReadOnlyList<DataSegment> segments)
    {
        var frame = _framePool!.Rent();
        try
        {
            var content = slot.AsSpan(TarHeader.BlockSize, length);
            var stored = ZstdFrames.Compress(content, frame.AsSpan(TarHeader.BlockSize, frame.Length - 2 * TarHeader.BlockSize), _options.ZstdLevel, ZstdFrames.BlockEnds(segments));
            var sha = StreamRules.HashesContent(_manifest!.FormatVersion, Compression.Zstd) ? Hex(SHA256.HashData(content)) : null;
            _slotPool.Return(slot);
            var storedSha = Hex(SHA256.HashData(frame.AsSpan(TarHeader.BlockSize, stored)));
            var total = Frame(frame, name, stored);
            return new ReadyMember(frame, total, new TrailerEntry(name, stored, length, sha, storedSha), _framePool);
        }
        catch
        {
            _framePool.Return(frame);
            throw;
        }
    }

    /// <summary>Fills the header in front of and the zero padding behind <paramref name="stored"/> bytes at offset 512.</summary>
    private static int Frame(byte[] buffer, string name, int stored)
    {
        TarHeader.Write(buffer.AsSpan(0, TarHeader.BlockSize), name, stored);
        var padding = TarHeader.PaddingFor(stored);
        buffer.AsSpan(TarHeader.BlockSize + stored, padding).Clear();
        return TarHeader.BlockSize + stored + padding;
    }

    private Task EnqueueSmallAsync(string name, byte[] content, CancellationToken cancellationToken)
    {
        var buffer = new byte[TarHeader.BlockSize + content.Length + TarHeader.PaddingFor(content.Length)];
        content.CopyTo(buffer, TarHeader.BlockSize);
        var total = Frame(buffer, name, content.Length);
        var entry = new TrailerEntry(name, content.Length, content.Length, Hex(SHA256.HashData(content)), null);
        return EnqueueAsync(Task.FromResult(new ReadyMember(buffer, total, entry, null)), cancellationToken);
    }

    private async Task EnqueueAsync(Task<ReadyMember> work, CancellationToken cancellationToken)
    {
        ThrowIfFaulted();
        await _queue.Writer.WriteAsync(work, cancellationToken).ConfigureAwait(false);
        _outputFault?.Throw();
    }

    /// <summary>Writes finished members in order. After an error it keeps consuming (releasing buffers) but writes nothing.</summary>
    private async Task DrainAsync()
    {
        await foreach (var work in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            ReadyMember ready;
            try
            {
                ready = await work.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _outputFault ??= ExceptionDispatchInfo.Capture(e);
                continue;
            }
            try
            {
                if (_outputFault is null)
                {
                    await _output.WriteAsync(ready.Buffer.AsMemory(0, ready.Length), _abort.Token).ConfigureAwait(false);
                    if (ready.Entry is { } entry)
                    {
                        _entries.Add(entry);
                    }
                }
            }
            catch (Exception e)
            {
                _outputFault ??= ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                ready.Release();
            }
        }
    }

    private async Task FinishAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.Complete();
        await _drain.ConfigureAwait(false);
        _outputFault?.Throw();
        var trailer = Trailer.Create(_manifest!, _manifestSha256, _entries);
        var json = StreamJson.Serialize(trailer);
        var buffer = new byte[TarHeader.BlockSize + json.Length + TarHeader.PaddingFor(json.Length) + 2 * TarHeader.BlockSize];
        json.CopyTo(buffer, TarHeader.BlockSize);
        Frame(buffer, MemberNames.Trailer, json.Length); // end-of-archive: the two zero blocks already at the end
        await _output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stage = Stage.Completed;
    }

    internal static string Hex(ReadOnlySpan<byte> hash) => Convert.ToHexStringLower(hash);
}
