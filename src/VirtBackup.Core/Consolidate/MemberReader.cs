using System.Buffers;
using System.Security.Cryptography;
using VirtBackup.Core.Recovery;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Consolidate;

/// <summary>
/// Reads data members of a chain's stream files by position: their stored bytes as they are (to copy), or their
/// content decoded and checked against the trailer's SHA-256 (to re-encode a piece of it). Holds one stored and
/// one decoded member at a time, whatever the disk size; the last decoded member is kept for the next piece.
/// </summary>
internal sealed class MemberReader : IDisposable
{
    private readonly Dictionary<StreamFile, Dictionary<string, TrailerEntry>> _entries = [];
    private byte[] _stored = [];
    private byte[] _content = [];
    private DataMember? _decoded;

    /// <summary>The member's stored bytes (header checked), valid until the next call; and its trailer entry.</summary>
    public (ReadOnlyMemory<byte> Stored, TrailerEntry Entry) Stored(DataMember member)
    {
        var entry = member.Member;
        var total = TarHeader.BlockSize + (int)entry.StoredSize;
        Grow(ref _stored, total);
        TrailerLocator.ReadExactly(member.Source.Handle, _stored.AsSpan(0, total), entry.HeaderOffset, member.Source.Path);
        if (StreamFile.HeaderProblem(_stored.AsSpan(0, TarHeader.BlockSize), entry) is { } problem)
        {
            throw Corrupt(member, $"its tar header is not the expected one ({problem})");
        }

        return (_stored.AsMemory(TarHeader.BlockSize, (int)entry.StoredSize), Entry(member));
    }

    /// <summary>The member's whole content, decoded and checked; valid until the next call.</summary>
    public ReadOnlySpan<byte> Content(DataMember member)
    {
        if (ReferenceEquals(_decoded, member))
        {
            return _content.AsSpan(0, member.Length);
        }

        _decoded = null;
        var (stored, entry) = Stored(member);
        // A version-4 zstd member has no content SHA-256: its stored bytes' is checked, and the frame's checksum.
        if (member.Member.Sha256 is null && Convert.ToHexStringLower(SHA256.HashData(stored.Span)) != entry.StoredSha256)
        {
            throw Corrupt(member, "its stored bytes' SHA-256 differs from the trailer's (the stream file is corrupted)");
        }

        Grow(ref _content, member.Length);
        var content = _content.AsSpan(0, member.Length);
        if (member.Compression == Compression.Zstd)
        {
            if ((ZstdFrames.FrameProblem(stored.Span, member.Length) ?? ZstdFrames.Decompress(stored.Span, content)) is { } problem)
            {
                throw Corrupt(member, problem);
            }
        }
        else
        {
            stored.Span.CopyTo(content);
        }

        if (member.Member.Sha256 is not null && Convert.ToHexStringLower(SHA256.HashData(content)) != member.Member.Sha256)
        {
            throw Corrupt(member, "its content's SHA-256 differs from the trailer's (the stream file is corrupted)");
        }

        _decoded = member;
        return content;
    }

    /// <summary>A small member (manifest, XML, state file) read whole and checked against the trailer.</summary>
    public static byte[] Small(StreamFile file, StoredMember member)
    {
        var bytes = StreamFile.ReadContent(file.Handle, file.Path, member);
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != member.Sha256)
        {
            throw StreamFile.Bad(file.Path, member.Name, "its SHA-256 differs from the trailer's (the stream file is corrupted)");
        }

        return bytes;
    }

    private TrailerEntry Entry(DataMember member)
    {
        if (!_entries.TryGetValue(member.Source, out var byName))
        {
            byName = new Dictionary<string, TrailerEntry>(StringComparer.Ordinal);
            foreach (var e in member.Source.Trailer.Members)
            {
                byName.TryAdd(e.Name, e);
            }

            _entries[member.Source] = byName;
        }

        return byName[member.Member.Name];
    }

    private static StreamFormatException Corrupt(DataMember member, string problem) =>
        StreamFile.Bad(member.Source.Path, member.Member.Name, problem);

    private static void Grow(ref byte[] buffer, int size)
    {
        if (buffer.Length >= size)
        {
            return;
        }

        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        buffer = ArrayPool<byte>.Shared.Rent(size);
    }

    public void Dispose()
    {
        if (_stored.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_stored);
        }

        if (_content.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_content);
        }

        _stored = _content = [];
    }
}
