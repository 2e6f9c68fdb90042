using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace VirtBackup.Core.Stream;

/// <summary>
/// Compression and decompression through the system's libzstd (libzstd.so.1, which Debian's apt itself depends
/// on): compressing is about 2.5x faster than ZstdSharp on incompressible data and ~20% on text, which is most
/// of a backup's CPU; decompressing is most of a restore's. <see cref="IsAvailable"/> is false where the
/// library cannot be loaded; the caller then uses ZstdSharp.
/// Same parameters as <see cref="ZstdFrames"/>: one frame, content size and checksum, no dictionary id.
/// </summary>
internal static partial class NativeZstd
{
    private const string Lib = "libzstd.so.1";

    // ZSTD_cParameter values from zstd.h (stable API).
    private const int CompressionLevel = 100;
    private const int ContentSizeFlag = 200;
    private const int ChecksumFlag = 201;
    private const int DictIdFlag = 202;

    // ZSTD_EndDirective and ZSTD_ResetDirective values.
    private const int EndFlush = 1;
    private const int EndFrame = 2;
    private const int ResetSessionOnly = 1;

    // Contexts are pooled, not per thread: compression and decompression run on whichever thread-pool thread is free, so
    // per-thread contexts (a few MiB each) grew with the threads the pool happened to use; pooled, they are as many as
    // ever worked at once.
    private static readonly ConcurrentBag<Context> Contexts = [];
    private static readonly ConcurrentBag<nint> DContexts = [];
    private static readonly ConcurrentBag<nint> DContextsWithoutChecksum = [];
    private static int _contextsCreated;

    /// <summary>Compression contexts created so far in this process (tests: they follow concurrency, not threads).</summary>
    internal static int ContextsCreated => Volatile.Read(ref _contextsCreated);

    /// <summary><c>ZSTD_d_forceIgnoreChecksum</c> (zstd.h: ZSTD_d_experimentalParam3), value <c>ZSTD_d_ignoreChecksum</c>.</summary>
    private const int ForceIgnoreChecksum = 1002;

    public static bool IsAvailable { get; } = NativeLibrary.TryLoad(Lib, out _);

    /// <summary>
    /// Compresses <paramref name="source"/> into one frame; returns the frame length. With <paramref name="blockEnds"/>,
    /// zstd ends a block at each of those offsets (see <see cref="ZstdFrames.Compress"/>).
    /// </summary>
    public static unsafe int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level, ReadOnlySpan<int> blockEnds)
    {
        if (!Contexts.TryTake(out var context) || context.Level != level)
        {
            context?.Dispose();
            context = new Context(level);
        }

        try
        {
            return Compress(context, source, destination, blockEnds);
        }
        finally
        {
            Contexts.Add(context);
        }
    }

    private static unsafe int Compress(Context context, ReadOnlySpan<byte> source, Span<byte> destination, ReadOnlySpan<int> blockEnds)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            if (blockEnds.IsEmpty)
            {
                // ZSTD_compress2 resets the session for every call: the frame depends on source and level only.
                var written = ZSTD_compress2(context.Handle, dst, (nuint)destination.Length, src, (nuint)source.Length);
                return (int)Check(written, "ZSTD_compress2");
            }

            Check(ZSTD_CCtx_reset(context.Handle, ResetSessionOnly), "ZSTD_CCtx_reset");
            Check(ZSTD_CCtx_setPledgedSrcSize(context.Handle, (ulong)source.Length), "ZSTD_CCtx_setPledgedSrcSize");
            var output = new OutBuffer { Dst = dst, Size = (nuint)destination.Length };
            var start = 0;
            for (var i = 0; i <= blockEnds.Length; i++)
            {
                var last = i == blockEnds.Length;
                var end = last ? source.Length : blockEnds[i];
                var input = new InBuffer { Src = src + start, Size = (nuint)(end - start) };
                while (Check(ZSTD_compressStream2(context.Handle, &output, &input, last ? EndFrame : EndFlush), "ZSTD_compressStream2") != 0)
                {
                    if (output.Pos == output.Size)
                    {
                        throw new InvalidOperationException("ZSTD_compressStream2: the destination is too small for the frame");
                    }
                }

                start = end;
            }

            return (int)output.Pos;
        }
    }

    /// <summary>
    /// Decodes <paramref name="frame"/> (already checked to be exactly one frame) into at most
    /// <paramref name="destination"/>'s length; returns the decoded length, or null with the library's description of
    /// what is wrong in <paramref name="problem"/>. <paramref name="checkChecksum"/> false skips zstd's own content
    /// checksum (XXH64 over every decoded byte) for content the caller checks otherwise.
    /// </summary>
    public static unsafe int? Decompress(ReadOnlySpan<byte> frame, Span<byte> destination, bool checkChecksum, out string? problem)
    {
        var pool = checkChecksum ? DContexts : DContextsWithoutChecksum;
        if (!pool.TryTake(out var dctx))
        {
            dctx = ZSTD_createDCtx();
            if (dctx == 0)
            {
                throw new OutOfMemoryException("ZSTD_createDCtx failed");
            }

            if (!checkChecksum)
            {
                // A libzstd without this (experimental) parameter refuses it: that context checks the checksum after all.
                _ = ZSTD_DCtx_setParameter(dctx, ForceIgnoreChecksum, 1);
            }
        }

        try
        {
            fixed (byte* src = frame)
            fixed (byte* dst = destination)
            {
                var written = ZSTD_decompressDCtx(dctx, dst, (nuint)destination.Length, src, (nuint)frame.Length);
                problem = ZSTD_isError(written) != 0 ? Marshal.PtrToStringUTF8(ZSTD_getErrorName(written)) : null;
                return problem is null ? (int)written : null;
            }
        }
        finally
        {
            pool.Add(dctx);
        }
    }

    private static nuint Check(nuint result, string call) =>
        ZSTD_isError(result) != 0
            ? throw new InvalidOperationException($"{call} failed: {Marshal.PtrToStringUTF8(ZSTD_getErrorName(result))}")
            : result;

    /// <summary>One compression context, configured once for its level.</summary>
    private sealed class Context : IDisposable
    {
        public Context(int level)
        {
            Level = level;
            Interlocked.Increment(ref _contextsCreated);
            Handle = ZSTD_createCCtx();
            if (Handle == 0)
            {
                throw new OutOfMemoryException("ZSTD_createCCtx failed");
            }

            Check(ZSTD_CCtx_setParameter(Handle, CompressionLevel, level), "ZSTD_CCtx_setParameter(level)");
            Check(ZSTD_CCtx_setParameter(Handle, ContentSizeFlag, 1), "ZSTD_CCtx_setParameter(contentSize)");
            Check(ZSTD_CCtx_setParameter(Handle, ChecksumFlag, 1), "ZSTD_CCtx_setParameter(checksum)");
            Check(ZSTD_CCtx_setParameter(Handle, DictIdFlag, 0), "ZSTD_CCtx_setParameter(dictID)");
        }

        public int Level { get; }

        public nint Handle { get; private set; }

        public void Dispose()
        {
            if (Handle != 0)
            {
                ZSTD_freeCCtx(Handle);
                Handle = 0;
            }
        }
    }

    [LibraryImport(Lib)]
    private static partial nint ZSTD_createCCtx();

    [LibraryImport(Lib)]
    private static partial nuint ZSTD_freeCCtx(nint cctx);

    [LibraryImport(Lib)]
    private static partial nuint ZSTD_CCtx_setParameter(nint cctx, int parameter, int value);

    [LibraryImport(Lib)]
    private static unsafe partial nuint ZSTD_compress2(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Lib)]
    private static partial nuint ZSTD_CCtx_reset(nint cctx, int reset);

    [LibraryImport(Lib)]
    private static partial nuint ZSTD_CCtx_setPledgedSrcSize(nint cctx, ulong pledgedSrcSize);

    [LibraryImport(Lib)]
    private static unsafe partial nuint ZSTD_compressStream2(nint cctx, OutBuffer* output, InBuffer* input, int endOp);

    [LibraryImport(Lib)]
    private static partial nint ZSTD_createDCtx();

    [LibraryImport(Lib)]
    private static partial nuint ZSTD_DCtx_setParameter(nint dctx, int parameter, int value);

    [LibraryImport(Lib)]
    private static unsafe partial nuint ZSTD_decompressDCtx(nint dctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Lib)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(Lib)]
    private static partial nint ZSTD_getErrorName(nuint code);

    /// <summary>zstd.h's ZSTD_inBuffer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct InBuffer
    {
        public byte* Src;
        public nuint Size;
        public nuint Pos;
    }

    /// <summary>zstd.h's ZSTD_outBuffer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct OutBuffer
    {
        public byte* Dst;
        public nuint Size;
        public nuint Pos;
    }
}
