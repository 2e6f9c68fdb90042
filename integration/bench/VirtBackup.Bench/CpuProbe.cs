using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace VirtBackup.Bench;

internal static unsafe partial class CpuProbe
{
    [LibraryImport("libzstd.so.1")] private static partial nint ZSTD_createCCtx();
    [LibraryImport("libzstd.so.1")] private static partial nuint ZSTD_CCtx_setParameter(nint c, int p, int v);
    [LibraryImport("libzstd.so.1")] private static partial nuint ZSTD_compress2(nint c, byte* dst, nuint cap, byte* src, nuint len);

    public static int Run(string[] args)
    {
        var data = File.ReadAllBytes(args[0]);
        const int member = 4 << 20;
        var dst = new byte[Compressor.GetCompressBound(member)];
        for (var round = 0; round < 3; round++)
        {
            var c = new Compressor(1);
            c.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
            var sw = Stopwatch.StartNew(); long outb = 0;
            for (var o = 0; o + member <= data.Length; o += member) outb += c.Wrap(data.AsSpan(o, member), dst);
            var tSharp = sw.Elapsed.TotalSeconds;
            var n = ZSTD_createCCtx(); ZSTD_CCtx_setParameter(n, 100, 1); ZSTD_CCtx_setParameter(n, 201, 1);
            sw.Restart(); long outn = 0;
            fixed (byte* s = data) fixed (byte* d = dst)
                for (var o = 0; o + member <= data.Length; o += member) outn += (long)ZSTD_compress2(n, d, (nuint)dst.Length, s + o, member);
            var tNative = sw.Elapsed.TotalSeconds;
            sw.Restart();
            for (var o = 0; o + member <= data.Length; o += member) SHA256.HashData(data.AsSpan(o, member));
            var tSha = sw.Elapsed.TotalSeconds;
            double mb = data.Length / 1048576.0;
            Console.WriteLine($"zstdsharp {mb / tSharp:F0} MiB/s ({outb}), native {mb / tNative:F0} MiB/s ({outn}), sha256 {mb / tSha:F0} MiB/s");
        }
        return 0;
    }
}
