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

    private const uint FrameMagic = 0xFD2FB528;

    public static int CompressBound(int length) => Compressor.GetCompressBound(length);

    /// <summary>Compresses <paramref name="source"/> into one frame (system libzstd where present); returns the frame length.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level) =>
        NativeZstd.IsAvailable ? NativeZstd.Compress(source, destination, level) : CompressManaged(source, destination, level);

    /// <summary>The same with ZstdSharp.</summary>
    internal static int CompressManaged(ReadOnlySpan<byte> source, Span<byte> destination, int level)
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
        // ZSTD_compress2 resets the session for every call: the frame depends on source and level only.
        return compressor.Wrap(source, destination);
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
    /// </summary>
    public static string? Decompress(ReadOnlySpan<byte> frame, Span<byte> destination)
    {
        if (!NativeZstd.IsAvailable)
        {
            return DecompressManaged(frame, destination);
        }

        return NativeZstd.Decompress(frame, destination, out var problem) is { } written
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

    private static string? Decoded(int written, int expected) =>
        written == expected ? null : $"zstd frame decoded to {written} bytes, expected {expected}";
}
