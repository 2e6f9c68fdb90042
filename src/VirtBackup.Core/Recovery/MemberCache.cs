using System.Buffers;
using System.Security.Cryptography;
using Serilog;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Decoded data members, least recently used first out, at most <see cref="CapacityBytes"/> of them (plus those
/// being decoded or sent), so memory stays flat whatever the disk size. Concurrent readers of one member share
/// one decode. Each member's content is checked against the trailer's SHA-256 the first time it is decoded; a
/// member that fails any check is corrupt for good: every read of it fails, and one log line names it.
/// </summary>
internal sealed class MemberCache(long capacityBytes, ILogger log)
{
    private readonly object _gate = new();
    private readonly Dictionary<DataMember, LinkedListNode<Entry>> _entries = new(ReferenceEqualityComparer.Instance);
    private readonly LinkedList<Entry> _recent = new();
    private long _bytes;

    public long CapacityBytes { get; } = capacityBytes;

    /// <summary>The member's content, decoded and checked; throws <see cref="ExportReadException"/> when it cannot be had.</summary>
    public Task<byte[]> GetAsync(DataMember member)
    {
        if (Volatile.Read(ref member.State) == DataMember.Corrupt)
            return Task.FromException<byte[]>(Corrupt(member));
        lock (_gate)
        {
            if (_entries.TryGetValue(member, out var node))
            {
                _recent.Remove(node);
                _recent.AddFirst(node);
                return node.Value.Content;
            }

            var entry = new Entry(member, Task.Run(() => Decode(member)));
            _entries[member] = _recent.AddFirst(entry);
            _bytes += member.Length;
            while (_bytes > CapacityBytes && _recent.Last is { } last && last != _recent.First)
                Remove(last);
            entry.Content.ContinueWith(t => Forget(member), CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return entry.Content;
        }
    }

    private void Forget(DataMember member)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(member, out var node))
                Remove(node);
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _recent.Remove(node);
        _entries.Remove(node.Value.Member);
        _bytes -= node.Value.Member.Length;
    }

    private byte[] Decode(DataMember member)
    {
        var entry = member.Member;
        var path = member.Source.Path;
        var stored = ArrayPool<byte>.Shared.Rent((int)(TarHeader.BlockSize + entry.StoredSize));
        try
        {
            var frame = stored.AsSpan(TarHeader.BlockSize, (int)entry.StoredSize);
            try
            {
                TrailerLocator.ReadExactly(member.Source.Handle, stored.AsSpan(0, TarHeader.BlockSize + (int)entry.StoredSize), entry.HeaderOffset, path);
            }
            catch (Exception e) when (e is IOException or StreamFormatException or UnauthorizedAccessException)
            {
                log.Error("reading {Member} failed: {Message}", member.Describe, e.Message);
                throw new ExportReadException($"reading {member.Describe} failed: {e.Message}");
            }

            if (StreamFile.HeaderProblem(stored.AsSpan(0, TarHeader.BlockSize), entry) is { } headerProblem)
                throw MarkCorrupt(member, $"its tar header is not the expected one ({headerProblem})");
            var content = GC.AllocateUninitializedArray<byte>(member.Length);
            if (member.Compression == Compression.Zstd)
            {
                if ((ZstdFrames.FrameProblem(frame, member.Length) ?? ZstdFrames.Decompress(frame, content)) is { } problem)
                    throw MarkCorrupt(member, problem);
            }
            else
            {
                frame.CopyTo(content);
            }

            if (Volatile.Read(ref member.State) != DataMember.Verified)
            {
                if (Convert.ToHexStringLower(SHA256.HashData(content)) != entry.Sha256)
                    throw MarkCorrupt(member, "its content's SHA-256 differs from the trailer's");
                Interlocked.CompareExchange(ref member.State, DataMember.Verified, DataMember.Unchecked);
            }

            return content;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
        }
    }

    private ExportReadException MarkCorrupt(DataMember member, string problem)
    {
        member.Problem = problem;
        if (Interlocked.Exchange(ref member.State, DataMember.Corrupt) != DataMember.Corrupt)
        {
            log.Error("{Member} is corrupt ({Problem}): reads of disk bytes {Start}..{End} fail with EIO",
                member.Describe, problem, member.DiskOffset, member.DiskOffset + member.Length - 1);
        }

        return Corrupt(member);
    }

    private static ExportReadException Corrupt(DataMember member) =>
        new($"{member.Describe} is corrupt ({member.Problem})");

    private sealed record Entry(DataMember Member, Task<byte[]> Content);
}

/// <summary>A read cannot be served (corrupt member, unreadable file): the client gets EIO, never wrong bytes.</summary>
internal sealed class ExportReadException(string message) : Exception(message);
