using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// A fingerprint of a member's stored bytes as they were when its content was first checked against the trailer's
/// SHA-256: the CRC-32C of each of three interleaved lanes (8-byte words taken in turn), and the length. A member read
/// again with the same fingerprint is the same bytes (any burst of up to 32 flipped bits changes it, other damage
/// slips through with odds of 2^-96), so its content need not be checked again; the CPU's CRC instruction makes this
/// several times cheaper than zstd's own XXH64 over the decoded content. Null where the CPU has no CRC-32C instruction.
/// </summary>
internal static class StoredFingerprint
{
    public static UInt128? Of(ReadOnlySpan<byte> stored)
    {
        if (!Sse42.X64.IsSupported)
        {
            return null;
        }

        ulong a = uint.MaxValue, b = uint.MaxValue, c = uint.MaxValue;
        var words = MemoryMarshal.Cast<byte, ulong>(stored);
        var whole = words.Length / 3 * 3;
        ref var word = ref MemoryMarshal.GetReference(words);
        // Three independent CRCs in flight at once: the instruction's latency is three times its throughput.
        for (var i = 0; i < whole; i += 3)
        {
            a = Sse42.X64.Crc32(a, Unsafe.Add(ref word, i));
            b = Sse42.X64.Crc32(b, Unsafe.Add(ref word, i + 1));
            c = Sse42.X64.Crc32(c, Unsafe.Add(ref word, i + 2));
        }

        foreach (var rest in stored[(whole * sizeof(ulong))..])
        {
            c = Sse42.Crc32((uint)c, rest);
        }

        return new UInt128((a << 32) | (uint)b, (c << 32) | (uint)stored.Length);
    }
}
