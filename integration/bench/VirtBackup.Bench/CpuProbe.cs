using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace VirtBackup.Bench;

/// <summary>
/// The <c>cpu</c> verb: how fast this machine compresses (ZstdSharp, system libzstd, level 1) and hashes
/// (SHA-256) a file in 4 MiB members, the writer's unit of work. Explains benchmark 2's CPU budget.
/// </summary>
internal static unsafe partial class CpuProbe
{
    private const int Member = 4 * 1024 * 1024;

    public static int Run(string file)
    {
        var data = File.ReadAllBytes(file);
        var destination = new byte[Compressor.GetCompressBound(Member)];
        var mib = data.Length / 1048576.0;
        using var managed = new Compressor(1);
        managed.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        var native = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(native, 100, 1); // compression level
        ZSTD_CCtx_setParameter(native, 201, 1); // checksum
        for (var round = 1; round <= 3; round++)
        {
            long managedBytes = 0, nativeBytes = 0;
            var managedSeconds = Time(o => managedBytes += managed.Wrap(data.AsSpan(o, Member), destination));
            var nativeSeconds = Time(o =>
            {
                fixed (byte* src = data)
                fixed (byte* dst = destination)
                {
                    nativeBytes += (long)ZSTD_compress2(native, dst, (nuint)destination.Length, src + o, Member);
                }
            });
            var shaSeconds = Time(o => SHA256.HashData(data.AsSpan(o, Member)));
            Console.WriteLine(
                $"round {round}: ZstdSharp {mib / managedSeconds:F0} MiB/s ({managedBytes} bytes), libzstd {mib / nativeSeconds:F0} MiB/s " +
                $"({nativeBytes} bytes), SHA-256 {mib / shaSeconds:F0} MiB/s");
        }

        ZSTD_freeCCtx(native);
        return 0;

        double Time(Action<int> member)
        {
            var clock = Stopwatch.StartNew();
            for (var offset = 0; offset + Member <= data.Length; offset += Member)
            {
                member(offset);
            }

            return clock.Elapsed.TotalSeconds;
        }
    }

    [LibraryImport("libzstd.so.1")]
    private static partial nint ZSTD_createCCtx();

    [LibraryImport("libzstd.so.1")]
    private static partial nuint ZSTD_freeCCtx(nint cctx);

    [LibraryImport("libzstd.so.1")]
    private static partial nuint ZSTD_CCtx_setParameter(nint cctx, int parameter, int value);

    [LibraryImport("libzstd.so.1")]
    private static partial nuint ZSTD_compress2(nint cctx, byte* dst, nuint capacity, byte* src, nuint length);
}
