using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Consolidate;

/// <summary>What <see cref="SyntheticFull.WriteAsync"/> wrote.</summary>
public sealed record ConsolidateResult(Manifest Manifest, int Streams, MergedCounts Counts);

/// <summary>What consolidating one disk wrote: members copied as stored, members encoded anew, and their content bytes.</summary>
public readonly record struct MergedCounts(int CopiedMembers, long CopiedBytes, int EncodedMembers, long EncodedBytes)
{
    public static MergedCounts operator +(MergedCounts a, MergedCounts b) =>
        new(a.CopiedMembers + b.CopiedMembers, a.CopiedBytes + b.CopiedBytes, a.EncodedMembers + b.EncodedMembers, a.EncodedBytes + b.EncodedBytes);
}
