using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>What a range of a served disk reads as.</summary>
internal enum SpanKind : byte
{
    /// <summary>Never written in the chain (unallocated in the full): reads as zeros.</summary>
    Hole,
    /// <summary>A zero extent of the newest stream that mentions it: reads as zeros.</summary>
    Zero,
    /// <summary>Bytes of a data member.</summary>
    Data,
}

/// <summary>
/// A range of the disk and where its bytes come from; for <see cref="SpanKind.Data"/>, part of <see cref="Member"/>:
/// disk byte <c>d</c> is byte <c>d - ContentBase</c> of the member's content.
/// </summary>
internal readonly record struct DiskSpan(long Offset, long Length, SpanKind Kind, DataMember? Member, long ContentBase = 0)
{
    public long End => Offset + Length;
}

/// <summary>
/// The extent map of one served disk: sorted spans covering it exactly, each a hole, zeros, or the newest data
/// member of the chain that holds it. Built from the maps alone (one span per data member segment at most), found by
/// binary search.
/// </summary>
internal sealed class DiskLayout
{
    private readonly DiskSpan[] _spans;

    private DiskLayout(string target, long size, DiskSpan[] spans)
    {
        Target = target;
        Size = size;
        _spans = spans;
    }

    public string Target { get; }
    public long Size { get; }
    public IReadOnlyList<DiskSpan> Spans => _spans;

    /// <summary>The index of the span holding <paramref name="offset"/> (0 &lt;= offset &lt; <see cref="Size"/>).</summary>
    public int Find(long offset)
    {
        int lo = 0, hi = _spans.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >>> 1;
            if (_spans[mid].Offset <= offset)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    /// <summary>
    /// The disk after the full (or copy) and each incremental in order: ranges an incremental's map lists replace
    /// what was there (its data members, or zeros); ranges it does not list stay as they were.
    /// </summary>
    public static DiskLayout Build(string target, long size, IEnumerable<(DiskMap Map, IReadOnlyList<DataMember> Members)> streams)
    {
        var spans = new List<DiskSpan> { new(0, size, SpanKind.Hole, null) };
        foreach (var (map, members) in streams)
        {
            spans = Overlay(spans, Listed(map, members), size);
        }

        var merged = new List<DiskSpan>(spans.Count);
        foreach (var s in spans)
        {
            if (s.Length == 0)
            {
                continue;
            }

            if (merged.Count > 0 && s.Kind != SpanKind.Data && merged[^1].Kind == s.Kind)
            {
                merged[^1] = merged[^1] with { Length = merged[^1].Length + s.Length };
            }
            else
            {
                merged.Add(s);
            }
        }

        if (merged.Count == 0)
        {
            merged.Add(new DiskSpan(0, 0, SpanKind.Hole, null));
        }

        return new DiskLayout(target, size, merged.ToArray());
    }

    /// <summary>The spans a stream's map lists, sorted: zero extents, and each data member's segments (its ranges).</summary>
    private static List<DiskSpan> Listed(DiskMap map, IReadOnlyList<DataMember> members)
    {
        var result = new List<DiskSpan>();
        var zeros = map.Extents.Where(e => e.Zero).GetEnumerator();
        var zero = zeros.MoveNext();
        foreach (var member in members)
        {
            foreach (var s in member.Segments)
            {
                for (; zero && zeros.Current.Offset < s.DiskOffset; zero = zeros.MoveNext())
                {
                    result.Add(new DiskSpan(zeros.Current.Offset, zeros.Current.Length, SpanKind.Zero, null));
                }

                result.Add(new DiskSpan(s.DiskOffset, s.Length, SpanKind.Data, member, s.DiskOffset - s.ContentOffset));
            }
        }

        for (; zero; zero = zeros.MoveNext())
        {
            result.Add(new DiskSpan(zeros.Current.Offset, zeros.Current.Length, SpanKind.Zero, null));
        }

        return result;
    }

    /// <summary>Lays <paramref name="top"/> (sorted, not overlapping, partial) over <paramref name="below"/> (sorted, complete).</summary>
    private static List<DiskSpan> Overlay(List<DiskSpan> below, List<DiskSpan> top, long size)
    {
        var result = new List<DiskSpan>(below.Count + top.Count);
        var i = 0;
        long position = 0;
        foreach (var t in top)
        {
            CopyBelow(below, ref i, position, t.Offset, result);
            result.Add(t);
            position = t.End;
        }

        CopyBelow(below, ref i, position, size, result);
        return result;
    }

    private static void CopyBelow(List<DiskSpan> below, ref int i, long from, long to, List<DiskSpan> into)
    {
        while (i < below.Count && below[i].End <= from)
        {
            i++;
        }

        while (i < below.Count && below[i].Offset < to)
        {
            var s = below[i];
            long start = Math.Max(s.Offset, from), end = Math.Min(s.End, to);
            if (end > start)
            {
                into.Add(s with { Offset = start, Length = end - start });
            }

            if (s.End > to)
            {
                break;
            }

            i++;
        }
    }
}
