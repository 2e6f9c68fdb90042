using System.Runtime.InteropServices;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Decodes a data member's zstd frame without zstd's own content checksum (XXH64 over every decoded byte, about a
/// sixth of serve's decoding CPU), for content the caller checks otherwise: against the trailer's SHA-256 the first
/// time, by <see cref="StoredFingerprint"/> after that. With the system libzstd on one context per thread
/// (<c>ZSTD_d_forceIgnoreChecksum</c>); without it, <see cref="ZstdFrames.Decompress"/> (checksum and all).
/// </summary>
internal static unsafe class ZstdWithoutChecksum
{
    private const string Lib = "libzstd.so.1";

    /// <summary><c>ZSTD_d_forceIgnoreChecksum</c> (zstd.h: ZSTD_d_experimentalParam3), value <c>ZSTD_d_ignoreChecksum</c>.</summary>
    private const int ForceIgnoreChecksum = 1002;

    [ThreadStatic] private static nint _context;

    /// <summary>Decodes a frame checked by <see cref="ZstdFrames.FrameProblem"/> into exactly <paramref name="content"/>; returns what is wrong, or null.</summary>
    public static string? Decompress(ReadOnlySpan<byte> frame, Span<byte> content)
    {
        var context = Bound ? Context() : 0;
        if (context == 0)
        {
            return ZstdFrames.Decompress(frame, content);
        }

        fixed (byte* source = frame)
        fixed (byte* destination = content)
        {
            var written = ZSTD_decompressDCtx(context, destination, (nuint)content.Length, source, (nuint)frame.Length);
            if (ZSTD_isError(written) != 0)
            {
                return $"zstd frame is corrupt ({Marshal.PtrToStringUTF8(ZSTD_getErrorName(written))})";
            }

            return written == (nuint)content.Length ? null : $"zstd frame decoded to {written} bytes, expected {content.Length}";
        }
    }

    /// <summary>This thread's context, made once; 0 when libzstd cannot make one or lacks the parameter.</summary>
    private static nint Context()
    {
        if (_context == 0)
        {
            var context = ZSTD_createDCtx();
            if (context != 0 && ZSTD_isError(ZSTD_DCtx_setParameter(context, ForceIgnoreChecksum, 1)) != 0)
            {
                ZSTD_freeDCtx(context);
                context = -1;
            }

            _context = context;
        }

        return _context == -1 ? 0 : _context;
    }

    // The few libzstd calls this needs, bound once by name (NativeZstd's context always checks the checksum).
    private static readonly nint Library = NativeLibrary.TryLoad(Lib, out var library) ? library : 0;
    private static readonly delegate* unmanaged<nint> ZSTD_createDCtx = (delegate* unmanaged<nint>)Export("ZSTD_createDCtx");
    private static readonly delegate* unmanaged<nint, nuint> ZSTD_freeDCtx = (delegate* unmanaged<nint, nuint>)Export("ZSTD_freeDCtx");
    private static readonly delegate* unmanaged<nint, int, int, nuint> ZSTD_DCtx_setParameter =
        (delegate* unmanaged<nint, int, int, nuint>)Export("ZSTD_DCtx_setParameter");
    private static readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint> ZSTD_decompressDCtx =
        (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint>)Export("ZSTD_decompressDCtx");
    private static readonly delegate* unmanaged<nuint, uint> ZSTD_isError = (delegate* unmanaged<nuint, uint>)Export("ZSTD_isError");
    private static readonly delegate* unmanaged<nuint, nint> ZSTD_getErrorName = (delegate* unmanaged<nuint, nint>)Export("ZSTD_getErrorName");

    private static readonly bool Bound = ZSTD_createDCtx != null && ZSTD_freeDCtx != null && ZSTD_DCtx_setParameter != null
        && ZSTD_decompressDCtx != null && ZSTD_isError != null && ZSTD_getErrorName != null;

    private static nint Export(string name) =>
        Library != 0 && NativeLibrary.TryGetExport(Library, name, out var address) ? address : 0;
}
