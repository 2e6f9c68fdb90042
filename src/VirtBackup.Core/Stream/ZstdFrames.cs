using ZstdSharp;
using ZstdSharp.Unsafe;

namespace VirtBackup.Core.Stream;

/// <summary>
/// Data members in zstd form: exactly one standard zstd frame, with the content size in the frame header
/// and the content checksum, compressed with nothing but the member's bytes and the level (no dictionary,
/// no long-distance matching, no threads inside zstd), so the same content gives the same frame (with one
/// zstd version: the system libzstd where present, else ZSTDSharp).
/// </summary>
internal static unsafe class ZstdFrames
{
    [ThreadStatic] private static Compressor? _compressor;
    [ThreadStatic] private static int _compressorLevel;
    [ThreadStatic] private static Decompressor? _decompressor;
    [ThreadStatic] private static ZSTD_CCtx_s* _streamContext; // for frames with block ends; never freed (one per thread)
    [ThreadStatic] private static int _streamContextLevel;

    private const uint FrameMagic = 0xFD2FB528;

    public static int CompressBound(int length) => Compressor.GetCompressBound(length);

    /// <summary>A block end goes only where at least this much content came since the previous one.</summary>
    public const int MinBlockPiece = 16 * 1024;

    /// <summary>
    /// Compresses <paramref name="source"/> into one frame (system libzstd where present); returns the frame length.
    /// With <paramref name="blockEnds"/> (ascending offsets inside the source), zstd ends a block at each of them
    /// (ZSTD_e_flush), still in one frame with one history: a member that packs many small extents gets blocks that
    /// follow the extents, so a block of random bytes is stored raw and a block of text gets entropy tables of its own
    /// instead of sharing them with the random bytes beside it. On the scale benchmark's mix of 64 KiB extents at level 1
    /// that is 7% smaller and 17% faster. Without block ends the frame is ZSTD_compress2's.
    /// </summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level, ReadOnlySpan<int> blockEnds = default) =>
        NativeZstd.IsAvailable ? NativeZstd.Compress(source, destination, level, blockEnds) : CompressManaged(source, destination, level, blockEnds);

    /// <summary>
    /// The block ends for a member whose content is <paramref name="segments"/> (content offsets ascending): every
    /// segment's end that lies at least <see cref="MinBlockPiece"/> after the previous block end and before the content's
    /// end. Empty for a member of one segment, so a member of one extent is compressed exactly as before.
    /// </summary>
    public static int[] BlockEnds(IReadOnlyList<DataSegment> segments)
    {
        if (segments.Count < 2)
        {
            return [];
        }

        var ends = new List<int>();
        var previous = 0;
        var contentEnd = segments[^1].ContentOffset + segments[^1].Length;
        for (var i = 0; i < segments.Count - 1; i++)
        {
            var end = segments[i].ContentOffset + segments[i].Length;
            if (end - previous >= MinBlockPiece && end < contentEnd)
            {
                ends.Add(end);
                previous = end;
            }
        }

        return [.. ends];
    }

    /// <summary>The same with ZstdSharp.</summary>
    internal static int CompressManaged(ReadOnlySpan<byte> source, Span<byte> destination, int level, ReadOnlySpan<int> blockEnds = default)
    {
        var compressor = _compressor;
        if (compressor is null || _compressorLevel != level)
        {
            compressor?.Dispose();
            compressor = new Compressor(level);
            compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
            compressor.SetParameter(ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1);
            compressor.SetParameter(ZSTD_cParameter.ZSTD_c_dictIDFlag, 0);
            _compressor = compressor;
            _compressorLevel = level;
        }

        if (blockEnds.IsEmpty)
        {
            // ZSTD_compress2 resets the session for every call: the frame depends on source and level only.
            return compressor.Wrap(source, destination);
        }

        var cctx = _streamContext;
        if (cctx is null || _streamContextLevel != level)
        {
            if (cctx is not null)
            {
                Methods.ZSTD_freeCCtx(cctx);
            }

            cctx = _streamContext = Methods.ZSTD_createCCtx();
            _streamContextLevel = level;
            Check(Methods.ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_compressionLevel, level));
            Check(Methods.ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_checksumFlag, 1));
            Check(Methods.ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1));
            Check(Methods.ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_dictIDFlag, 0));
        }

        Check(Methods.ZSTD_CCtx_reset(cctx, ZSTD_ResetDirective.ZSTD_reset_session_only));
        Check(Methods.ZSTD_CCtx_setPledgedSrcSize(cctx, (ulong)source.Length));
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var output = new ZSTD_outBuffer_s { dst = dst, size = (nuint)destination.Length };
            var start = 0;
            for (var i = 0; i <= blockEnds.Length; i++)
            {
                var last = i == blockEnds.Length;
                var end = last ? source.Length : blockEnds[i];
                var input = new ZSTD_inBuffer_s { src = src + start, size = (nuint)(end - start) };
                while (Check(Methods.ZSTD_compressStream2(cctx, &output, &input, last ? ZSTD_EndDirective.ZSTD_e_end : ZSTD_EndDirective.ZSTD_e_flush)) != 0)
                {
                    if (output.pos == output.size)
                    {
                        throw new InvalidOperationException("ZSTD_compressStream2: the destination is too small for the frame");
                    }
                }

                start = end;
            }

            return (int)output.pos;
        }
    }

    /// <summary>
    /// Checks that <paramref name="frame"/> is exactly one zstd frame (no skippable frame, nothing after it)
    /// with a content checksum and a declared content size equal to <paramref name="expectedSize"/>,
    /// without decoding it. Returns what is wrong, or null.
    /// </summary>
    public static string? FrameProblem(ReadOnlySpan<byte> frame, long expectedSize)
    {
        if (frame.Length < 4 || BitConverter.ToUInt32(frame[..4]) != FrameMagic)
        {
            return "is not a zstd frame (bad magic number)";
        }

        ZSTD_frameHeader header;
        fixed (byte* p = frame)
        {
            var r = Methods.ZSTD_getFrameHeader(&header, p, (nuint)frame.Length);
            if (Methods.ZSTD_isError(r))
            {
                return $"has an invalid zstd frame header ({Methods.ZSTD_getErrorName(r)})";
            }

            if (r != 0)
            {
                return "has a truncated zstd frame header";
            }

            if (header.frameType != ZSTD_frameType_e.ZSTD_frame)
            {
                return "is a skippable zstd frame";
            }

            if (header.checksumFlag == 0)
            {
                return "zstd frame has no content checksum";
            }

            if (header.dictID != 0)
            {
                return "zstd frame needs a dictionary";
            }

            if (header.frameContentSize == ulong.MaxValue) // ZSTD_CONTENTSIZE_UNKNOWN
            {
                return "zstd frame does not declare its content size";
            }

            if (header.frameContentSize != (ulong)expectedSize)
            {
                return $"zstd frame declares {header.frameContentSize} bytes of content, expected {expectedSize}";
            }

            var compressed = Methods.ZSTD_findFrameCompressedSize(p, (nuint)frame.Length);
            if (Methods.ZSTD_isError(compressed))
            {
                return $"zstd frame is corrupt ({Methods.ZSTD_getErrorName(compressed)})";
            }

            if (compressed != (nuint)frame.Length)
            {
                return $"holds {frame.Length - (long)compressed} bytes after its zstd frame";
            }
        }
        return null;
    }

    /// <summary>
    /// Decodes a frame already checked by <see cref="FrameProblem"/> into exactly <paramref name="destination"/>
    /// (its declared content size): never more, with the system libzstd where present. Returns what is wrong, or null.
    /// <paramref name="checkChecksum"/> false skips zstd's own content checksum (about a sixth of the decoding CPU) for
    /// content the caller checks otherwise; ZstdSharp always checks it.
    /// </summary>
    public static string? Decompress(ReadOnlySpan<byte> frame, Span<byte> destination, bool checkChecksum = true)
    {
        if (!NativeZstd.IsAvailable)
        {
            return DecompressManaged(frame, destination);
        }

        return NativeZstd.Decompress(frame, destination, checkChecksum, out var problem) is { } written
            ? Decoded(written, destination.Length)
            : $"zstd frame is corrupt ({problem})";
    }

    /// <summary>The same with ZstdSharp.</summary>
    internal static string? DecompressManaged(ReadOnlySpan<byte> frame, Span<byte> destination)
    {
        var d = _decompressor ??= new Decompressor();
        try
        {
            return Decoded(d.Unwrap(frame, destination), destination.Length);
        }
        catch (ZstdException e)
        {
            return $"zstd frame is corrupt ({e.Message})";
        }
    }

    private static nuint Check(nuint result) =>
        Methods.ZSTD_isError(result) ? throw new InvalidOperationException($"zstd failed: {Methods.ZSTD_getErrorName(result)}") : result;

    private static string? Decoded(int written, int expected) =>
        written == expected ? null : $"zstd frame decoded to {written} bytes, expected {expected}";
}
