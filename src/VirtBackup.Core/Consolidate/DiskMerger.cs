using System.Buffers;
using VirtBackup.Core.Recovery;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Consolidate;

/// <summary>
/// Writes one disk of the synthetic full: the map of the chain's merged layout (data, zeros, holes as restore
/// leaves them), then each data member that map implies. A member whose ranges are exactly those of one surviving
/// member of an input (same segments, same compression) is copied as its stored bytes; any other (an input member
/// cut by a newer stream, or pieces of several) is assembled from the decoded inputs and encoded by the writer.
/// </summary>
internal sealed class DiskMerger(BackupStreamWriter writer, MemberReader reader, CompressionInfo compression, int formatVersion)
{
    public async Task<MergedCounts> WriteAsync(DiskLayout layout, CancellationToken cancellationToken)
    {
        var extents = MergedExtents(layout);
        await writer.WriteDiskMapAsync(layout.Target, extents, cancellationToken);
        var spans = layout.Spans;
        var counts = new MergedCounts();
        var content = ArrayPool<byte>.Shared.Rent(compression.MemberSize);
        try
        {
            var first = 0;
            foreach (var plan in StreamRules.Members(extents, compression.MemberSize, formatVersion))
            {
                while (spans[first].End <= plan.Offset)
                {
                    first++;
                }

                if (Surviving(spans, first, plan) is { } whole)
                {
                    var (stored, entry) = reader.Stored(whole);
                    await writer.WriteStoredDiskDataAsync(layout.Target, plan.Offset, plan.Length, stored, entry.Sha256, entry.StoredSha256,
                        $"'{whole.Source.Path}'", cancellationToken);
                    counts = counts with { CopiedMembers = counts.CopiedMembers + 1, CopiedBytes = counts.CopiedBytes + plan.Length };
                    continue;
                }

                foreach (var segment in plan.Segments)
                {
                    while (spans[first].End <= segment.DiskOffset)
                    {
                        first++;
                    }

                    var into = content.AsMemory(segment.ContentOffset, segment.Length);
                    Assemble(spans, first, segment.DiskOffset, into.Span);
                    await writer.WriteDiskDataAsync(layout.Target, segment.DiskOffset, into, cancellationToken);
                }

                counts = counts with { EncodedMembers = counts.EncodedMembers + 1, EncodedBytes = counts.EncodedBytes + plan.Length };
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(content);
        }

        return counts;
    }

    /// <summary>
    /// The input member the planned member can be copied from: one of the same compression and length whose segments
    /// are the plan's, and which still supplies every byte of them (no newer stream touched them); or null.
    /// </summary>
    private DataMember? Surviving(IReadOnlyList<DiskSpan> spans, int index, MemberPlan plan)
    {
        if (spans[index].Member is not { } whole || whole.Compression != compression.Algorithm || whole.Length != plan.Length
            || !whole.Segments.SequenceEqual(plan.Segments))
        {
            return null;
        }

        foreach (var segment in plan.Segments)
        {
            while (spans[index].End <= segment.DiskOffset)
            {
                index++;
            }

            for (var position = segment.DiskOffset; position < segment.DiskEnd; position = spans[index++].End)
            {
                var span = spans[index];
                if (span.Member != whole || span.ContentBase != segment.DiskOffset - segment.ContentOffset)
                {
                    return null;
                }
            }

            index--;
        }

        return whole;
    }

    /// <summary>The disk's map: data spans as data, zero spans as zeros, holes unlisted; adjacent ones merged.</summary>
    public static List<DiskExtent> MergedExtents(DiskLayout layout)
    {
        var extents = new List<DiskExtent>();
        foreach (var s in layout.Spans)
        {
            if (s.Kind == SpanKind.Hole || s.Length == 0)
            {
                continue;
            }

            var zero = s.Kind == SpanKind.Zero;
            if (extents.Count > 0 && extents[^1].Zero == zero && extents[^1].End == s.Offset)
            {
                extents[^1] = extents[^1] with { Length = extents[^1].Length + s.Length };
            }
            else
            {
                extents.Add(new DiskExtent(s.Offset, s.Length, zero));
            }
        }

        return extents;
    }

    /// <summary>Fills <paramref name="into"/> with the disk's bytes from <paramref name="offset"/>, all inside data spans.</summary>
    private void Assemble(IReadOnlyList<DiskSpan> spans, int index, long offset, Span<byte> into)
    {
        long position = offset, end = offset + into.Length;
        while (position < end)
        {
            var span = spans[index++];
            var member = span.Member
                ?? throw new InvalidOperationException($"The merged map puts data at {position}, but the chain has {span.Kind} there.");
            var stop = Math.Min(span.End, end);
            reader.Content(member).Slice((int)(position - span.ContentBase), (int)(stop - position))
                .CopyTo(into[(int)(position - offset)..]);
            position = stop;
        }
    }
}
