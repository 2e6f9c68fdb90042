using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Recovery;

/// <summary>One disk of a chain as an NBD export: reads served from the members its extent map names, through the cache.</summary>
internal sealed class DiskExport(DiskLayout layout, MemberCache cache, string description) : INbdExport
{
    public string Name => layout.Target;

    public string Description { get; } = description;

    public long Size => layout.Size;

    public async Task<ExportRead> ReadAsync(long offset, int length)
    {
        var spans = layout.Spans;
        var end = offset + length;
        var parts = new List<(long Offset, int Length, DiskSpan Span, Task<DecodedMember>? Content)>();
        for (var i = layout.Find(offset); i < spans.Count && spans[i].Offset < end; i++)
        {
            var span = spans[i];
            var from = Math.Max(offset, span.Offset);
            var take = (int)(Math.Min(end, span.End) - from);
            // Start every member's decode before waiting for any: a read across members decodes them in parallel.
            var content = span.Kind == SpanKind.Data ? cache.AcquireAsync(span.Member!) : null;
            parts.Add((from, take, span, content));
        }

        Prefetch(parts.Count > 0 ? parts[^1].Span : default, end);
        var pieces = new List<ExportPiece>(parts.Count);
        var holds = new List<IDisposable>();
        try
        {
            foreach (var (from, take, span, content) in parts)
            {
                if (content is null)
                {
                    if (pieces.Count > 0 && pieces[^1].IsZero)
                    {
                        pieces[^1] = pieces[^1] with { Length = pieces[^1].Length + take };
                    }
                    else
                    {
                        pieces.Add(new ExportPiece(from, take, ReadOnlyMemory<byte>.Empty, IsZero: true));
                    }

                    continue;
                }

                var decoded = await content.ConfigureAwait(false);
                holds.Add(decoded);
                pieces.Add(new ExportPiece(from, take, decoded.Buffer.AsMemory((int)(from - span.ContentBase), take), IsZero: false));
            }
        }
        catch
        {
            // Give back every member this read acquired, those still decoding included (once each).
            foreach (var (_, _, _, content) in parts)
            {
                _ = content?.ContinueWith(static t => t.Result.Release(), CancellationToken.None,
                    TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            throw;
        }

        return new ExportRead(pieces, holds);
    }

    /// <summary>
    /// A sequential reader past the middle of a member will want the next one: its decode starts now, so it
    /// overlaps the sending of this one.
    /// </summary>
    private void Prefetch(DiskSpan last, long end)
    {
        if (last.Member is not { } member || end - last.ContentBase < member.Length / 2)
        {
            return;
        }

        var spans = layout.Spans;
        for (var i = layout.Find(last.Offset) + 1; i < spans.Count && i <= layout.Find(last.Offset) + 4; i++)
        {
            if (spans[i].Member is { } next && next != member)
            {
                cache.Prefetch(next);
                return;
            }
        }
    }

    public void Extents(long offset, long length, int max, List<ExportExtent> into)
    {
        var spans = layout.Spans;
        var end = Math.Min(offset + length, layout.Size);
        var position = offset;
        for (var i = layout.Find(offset); i < spans.Count && position < end && into.Count < max; i++)
        {
            var span = spans[i];
            uint flags = span.Kind switch
            {
                SpanKind.Hole => NbdProtocol.StateHole | NbdProtocol.StateZero,
                SpanKind.Zero => NbdProtocol.StateZero,
                _ => 0,
            };
            var take = Math.Min(end, span.End) - position;
            if (into.Count > 0 && into[^1].Flags == flags && into[^1].Length + take <= MaxExtent)
            {
                into[^1] = into[^1] with { Length = (uint)(into[^1].Length + take) };
            }
            else
            {
                while (take > MaxExtent && into.Count < max)
                {
                    into.Add(new ExportExtent(MaxExtent, flags));
                    take -= MaxExtent;
                    position += MaxExtent;
                }

                if (into.Count >= max)
                {
                    break;
                }

                into.Add(new ExportExtent((uint)take, flags));
            }

            position += take;
        }
    }

    /// <summary>Largest extent length in a reply (32-bit field), kept a multiple of 4 KiB.</summary>
    private const uint MaxExtent = 0xFFFF_F000;
}
