using System.Buffers;
using System.Security.Cryptography;

namespace VirtBackup.Core.Stream;

/// <summary>Pre-encoded data members: stored bytes of another stream copied as they are (no recompression).</summary>
public sealed partial class BackupStreamWriter
{
    /// <summary>
    /// Writes the next data member of the current disk from its stored bytes as another stream holds them (a zstd
    /// frame, or the raw bytes), instead of content to encode. The member must be exactly the next piece the map
    /// implies (starting at <paramref name="offset"/>, <paramref name="length"/> bytes of content), begun by no
    /// <see cref="WriteDiskDataAsync"/> call. The writer computes the stored bytes' SHA-256 and compares it with
    /// <paramref name="storedSha256"/> (raw: with <paramref name="sha256"/>): a mismatch faults the writer with a
    /// <see cref="StreamFormatException"/> naming <paramref name="source"/>. The trailer gets the stored bytes'
    /// SHA-256 (zstd) and, where this stream's version records it (<see cref="StreamRules.HashesContent"/>), the
    /// content's: <paramref name="sha256"/>, or, for a zstd member of a stream that did not record it (null), the
    /// SHA-256 of the frame decoded here. The bytes are copied, so the caller may reuse its buffer once the call returns.
    /// </summary>
    public Task WriteStoredDiskDataAsync(string target, long offset, int length, ReadOnlyMemory<byte> stored,
        string? sha256, string? storedSha256, string source, CancellationToken cancellationToken) => Run(() =>
    {
        var disk = _disk;
        if (disk is null || disk.Target != target || _stage != Stage.Disks || disk.IsComplete || disk.NeedsPiece)
        {
            throw new InvalidOperationException($"A stored member of '{target}' must be the next data member of that disk (current disk: '{disk?.Target ?? "none"}').");
        }

        if (!disk.IsFresh || offset != disk.Plan.Offset || length != disk.Plan.Length)
        {
            throw new ArgumentException(
                $"A stored member of '{target}' at {offset} (+{length}) is not the next whole member ({disk.NextOffset}, +{disk.Plan.Length - disk.ContentFilled}).", nameof(offset));
        }

        var zstd = _options.Compression == Compression.Zstd;
        if (zstd ? storedSha256 is null || stored.Length > ZstdFrames.CompressBound(length) : stored.Length != length || sha256 is null)
        {
            throw new ArgumentException($"Stored bytes of {stored.Length} do not fit a {_options.Compression} member of {length} bytes, or their hash is missing.", nameof(stored));
        }

        var hashContent = StreamRules.HashesContent(disk.Version, _options.Compression);

        var name = MemberNames.DiskData(target, offset, _options.Compression);
        var pool = zstd ? _framePool! : _slotPool;
        var buffer = pool.Rent();
        stored.Span.CopyTo(buffer.AsSpan(TarHeader.BlockSize));
        var storedLength = stored.Length;
        return () =>
        {
            disk.Advance();
            var work = Task.Run(() =>
            {
                try
                {
                    var bytes = buffer.AsSpan(TarHeader.BlockSize, storedLength);
                    var actual = Hex(SHA256.HashData(bytes));
                    if (actual != (zstd ? storedSha256 : sha256))
                    {
                        throw new StreamFormatException(name, $"in {source}: its stored bytes' SHA-256 differs from the trailer's (the stream file is corrupted)");
                    }

                    if (zstd && ZstdFrames.FrameProblem(bytes, length) is { } problem)
                    {
                        throw new StreamFormatException(name, $"in {source}: its stored frame {problem}");
                    }

                    var contentSha = !hashContent ? null : sha256 ?? DecodedSha256(bytes, length, name, source);
                    var total = Frame(buffer, name, storedLength);
                    return new ReadyMember(buffer, total, new TrailerEntry(name, storedLength, length, contentSha, zstd ? storedSha256 : null), pool);
                }
                catch
                {
                    pool.Return(buffer);
                    throw;
                }
            }, CancellationToken.None);
            return EnqueueThenPiecesAsync(disk, work, cancellationToken);
        };
    });

    /// <summary>The content SHA-256 of a checked zstd frame, for a stream version that records it (its source did not).</summary>
    private static string DecodedSha256(ReadOnlySpan<byte> frame, int length, string name, string source)
    {
        var content = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            if (ZstdFrames.Decompress(frame, content.AsSpan(0, length)) is { } problem)
            {
                throw new StreamFormatException(name, $"in {source}: its stored frame {problem}");
            }

            return Hex(SHA256.HashData(content.AsSpan(0, length)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(content);
        }
    }

    private async Task EnqueueThenPiecesAsync(DiskState disk, Task<ReadyMember> work, CancellationToken cancellationToken)
    {
        await EnqueueAsync(work, cancellationToken).ConfigureAwait(false);
        await EmitPiecesAsync(disk, cancellationToken).ConfigureAwait(false);
    }
}
