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
    private readonly BufferPool _pool = new(capacityBytes);
    private long _bytes;

    public long CapacityBytes { get; } = capacityBytes;

    /// <summary>
    /// The member's content, decoded and checked, held for the caller until it disposes the result (then the buffer
    /// may go back to the pool); throws <see cref="ExportReadException"/> when it cannot be had.
    /// </summary>
    public async Task<DecodedMember> AcquireAsync(DataMember member)
    {
        while (true)
        {
            var decoded = await GetAsync(member).ConfigureAwait(false);
            if (decoded.TryAcquire())
            {
                return decoded;
            }
            // Evicted and released between the decode and now: decode it again.
        }
    }

    /// <summary>Starts decoding <paramref name="member"/> into the cache unless it is there, corrupt or being decoded.</summary>
    public void Prefetch(DataMember member)
    {
        if (Volatile.Read(ref member.State) != DataMember.Corrupt)
        {
            _ = GetAsync(member);
        }
    }

    private Task<DecodedMember> GetAsync(DataMember member)
    {
        if (Volatile.Read(ref member.State) == DataMember.Corrupt)
        {
            return Task.FromException<DecodedMember>(Corrupt(member));
        }

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
            {
                Remove(last);
            }

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
            {
                Remove(node);
            }
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _recent.Remove(node);
        _entries.Remove(node.Value.Member);
        _bytes -= node.Value.Member.Length;
        // The cache's own hold ends; readers still sending from the buffer keep it until they are done.
        node.Value.Content.ContinueWith(static t => t.Result.Release(), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private DecodedMember Decode(DataMember member)
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
            {
                throw MarkCorrupt(member, $"its tar header is not the expected one ({headerProblem})");
            }

            // Checked once against the trailer's SHA-256; after that the stored bytes must be the ones checked.
            var verified = Volatile.Read(ref member.State) == DataMember.Verified;
            var fingerprint = StoredFingerprint.Of(frame);
            if (verified && fingerprint is { } now && now != member.Fingerprint)
            {
                throw MarkCorrupt(member, "its stored bytes changed since they were first checked");
            }

            // A version-4 zstd member has no content SHA-256: its stored bytes' is checked, and the frame's checksum.
            var checksStored = entry.Sha256 is null;
            if (!verified && checksStored && Convert.ToHexStringLower(SHA256.HashData(frame)) != entry.StoredSha256)
            {
                throw MarkCorrupt(member, "its stored bytes' SHA-256 differs from the trailer's");
            }

            var decoded = new DecodedMember(_pool, member.Length);
            var content = decoded.Buffer.AsSpan(0, member.Length);
            if (member.Compression == Compression.Zstd)
            {
                // zstd's own checksum where nothing else checks the content: a CPU without CRC-32C, or no content SHA-256.
                var problem = ZstdFrames.FrameProblem(frame, member.Length)
                    ?? ZstdFrames.Decompress(frame, content, checkChecksum: verified ? fingerprint is null : checksStored);
                if (problem is not null)
                {
                    decoded.Release();
                    throw MarkCorrupt(member, problem);
                }
            }
            else
            {
                frame.CopyTo(content);
            }

            if (!verified)
            {
                if (!checksStored && Convert.ToHexStringLower(SHA256.HashData(content)) != entry.Sha256)
                {
                    decoded.Release();
                    throw MarkCorrupt(member, "its content's SHA-256 differs from the trailer's");
                }

                member.Fingerprint = fingerprint ?? default;
                Interlocked.CompareExchange(ref member.State, DataMember.Verified, DataMember.Unchecked);
            }

            return decoded;
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

    /// <summary>Buffers of exactly a member's length, kept for reuse up to about the cache's capacity.</summary>
    internal sealed class BufferPool(long capacityBytes)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<int, System.Collections.Concurrent.ConcurrentBag<byte[]>> _free = new();
        private long _kept;

        public byte[] Rent(int length)
        {
            if (_free.TryGetValue(length, out var bag) && bag.TryTake(out var buffer))
            {
                Interlocked.Add(ref _kept, -length);
                return buffer;
            }

            return GC.AllocateUninitializedArray<byte>(length);
        }

        public void Return(byte[] buffer)
        {
            if (Interlocked.Add(ref _kept, buffer.Length) > capacityBytes / 2)
            {
                Interlocked.Add(ref _kept, -buffer.Length);
                return; // let the GC have it
            }

            _free.GetOrAdd(buffer.Length, _ => []).Add(buffer);
        }
    }

    private sealed record Entry(DataMember Member, Task<DecodedMember> Content);
}

/// <summary>A read cannot be served (corrupt member, unreadable file): the client gets EIO, never wrong bytes.</summary>
internal sealed class ExportReadException(string message) : Exception(message);

/// <summary>
/// A decoded member's buffer, shared by the cache and the readers sending from it: each holds a reference, and
/// the buffer returns to the pool when the last lets go. A reference can only be taken while one is held, so a
/// returned buffer is never read again.
/// </summary>
internal sealed class DecodedMember : IDisposable
{
    private readonly MemberCache.BufferPool _pool;
    private int _references = 1; // the cache's

    public DecodedMember(MemberCache.BufferPool pool, int length)
    {
        _pool = pool;
        Buffer = pool.Rent(length);
    }

    public byte[] Buffer { get; }

    public bool TryAcquire()
    {
        while (true)
        {
            var references = Volatile.Read(ref _references);
            if (references == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _references, references + 1, references) == references)
            {
                return true;
            }
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _pool.Return(Buffer);
        }
    }

    public void Dispose() => Release();
}
