using System.Buffers.Binary;

namespace VirtBackup.Core.Restore.Qcow2;

/// <summary>
/// The parts of the qcow2 format (QEMU's docs/interop/qcow2.txt) that a new image without a backing file needs, in
/// one place: version 3 (compat=1.1), 64 KiB clusters, 16-bit refcounts, no extensions, no lazy refcounts. What
/// <c>qemu-img create -f qcow2 -o compat=1.1,lazy_refcounts=off</c> makes, so either opens the same way.
/// </summary>
internal static class Qcow2Layout
{
    public const int ClusterBits = 16;
    public const int ClusterSize = 1 << ClusterBits;

    /// <summary>Entries of an L2 table (one cluster of 8-byte entries); an L2 table maps this many guest clusters.</summary>
    public const int L2Entries = ClusterSize / sizeof(ulong);

    /// <summary>Refcount order 4: 16-bit refcounts, so one refcount block counts this many clusters.</summary>
    public const int RefcountOrder = 4;

    public const int RefcountsPerBlock = ClusterSize * 8 / (1 << RefcountOrder);

    /// <summary>Bit 63 of an L1 or L2 entry: the cluster's refcount is exactly one (it may be written in place).</summary>
    public const ulong Copied = 1UL << 63;

    /// <summary>Bits 9-55 of an L1 or L2 entry: the host offset.</summary>
    public const ulong OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;

    /// <summary>Version 3's header with the compression type byte and its padding (what QEMU 7 writes).</summary>
    public const int HeaderLength = 112;

    /// <summary>"QFI\xfb".</summary>
    private static ReadOnlySpan<byte> Magic => [0x51, 0x46, 0x49, 0xFB];

    /// <summary>qcow2 counts the virtual size in whole 512-byte sectors (qemu-img create rounds it up).</summary>
    public static long VirtualSize(long size) => (size + 511) / 512 * 512;

    /// <summary>L1 entries for <paramref name="virtualSize"/>: one per <see cref="L2Entries"/> guest clusters.</summary>
    public static int L1Size(long virtualSize) => checked((int)((virtualSize + ((long)ClusterSize * L2Entries) - 1) / ((long)ClusterSize * L2Entries)));

    public static long Clusters(long bytes) => (bytes + ClusterSize - 1) / ClusterSize;

    /// <summary>
    /// Refcount blocks and refcount table clusters that count <paramref name="clusters"/> clusters plus themselves,
    /// when they are placed after them.
    /// </summary>
    public static (long Blocks, long TableClusters) RefcountStructures(long clusters)
    {
        long blocks = 0, table = 0;
        while (true)
        {
            var needBlocks = (clusters + blocks + table + RefcountsPerBlock - 1) / RefcountsPerBlock;
            var needTable = (needBlocks + L2Entries - 1) / L2Entries;
            if (needBlocks == blocks && needTable == table)
            {
                return (blocks, table);
            }

            (blocks, table) = (needBlocks, needTable);
        }
    }

    /// <summary>The header cluster's first bytes: the version 3 header followed by the end-of-extensions marker.</summary>
    public static byte[] Header(long virtualSize, int l1Size, long l1Offset, long refcountTableOffset, int refcountTableClusters)
    {
        var header = new byte[HeaderLength + 8]; // + the end of the header extensions: type 0, length 0
        var span = header.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], 3); // version
        // 8-19: no backing file
        BinaryPrimitives.WriteUInt32BigEndian(span[20..], ClusterBits);
        BinaryPrimitives.WriteInt64BigEndian(span[24..], virtualSize);
        // 32-35: crypt_method none
        BinaryPrimitives.WriteInt32BigEndian(span[36..], l1Size);
        BinaryPrimitives.WriteInt64BigEndian(span[40..], l1Offset);
        BinaryPrimitives.WriteInt64BigEndian(span[48..], refcountTableOffset);
        BinaryPrimitives.WriteInt32BigEndian(span[56..], refcountTableClusters);
        // 60-71: no snapshots; 72-95: no incompatible, compatible or autoclear features
        BinaryPrimitives.WriteUInt32BigEndian(span[96..], RefcountOrder);
        BinaryPrimitives.WriteUInt32BigEndian(span[100..], HeaderLength);
        // 104: compression type zlib (no compressed clusters are written), 105-111 padding
        return header;
    }

    /// <summary>A table of 8-byte entries (L1, L2, refcount table) as it is on disk: big-endian.</summary>
    public static void WriteEntries(ReadOnlySpan<ulong> entries, Span<byte> destination)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination[(i * sizeof(ulong))..], entries[i]);
        }
    }

    public static void ReadEntries(ReadOnlySpan<byte> source, Span<ulong> entries)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt64BigEndian(source[(i * sizeof(ulong))..]);
        }
    }
}
