using Microsoft.Win32.SafeHandles;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Finds <c>virtbackup/trailer.json</c> from the end of a seekable stream file without reading the rest: the
/// stream ends with the trailer's header and content, its zero padding, then only zero blocks (at least two,
/// at most <see cref="MaxTrailingZeros"/> bytes). JSON holds no NUL byte, so no block inside the trailer's
/// content can pass for its header.
/// </summary>
internal static class TrailerLocator
{
    public const int MaxTrailingZeros = 1024 * 1024 + 2 * TarHeader.BlockSize;
    private const int Window = 256 * 1024;

    /// <summary>The trailer's header offset and content size.</summary>
    public static (long HeaderOffset, long Size) Find(SafeFileHandle file, long length, string path)
    {
        if (length % TarHeader.BlockSize != 0 || length < 3 * TarHeader.BlockSize)
        {
            throw Incomplete(path, $"its length {length} is not a whole number of 512-byte tar blocks (truncated?)");
        }

        var buffer = new byte[Window];
        var end = length; // exclusive end of the region not yet looked at
        long contentEnd = -1;
        long zeros = 0;
        var limit = Math.Max(0, length - MaxTrailingZeros - MaxTrailerBytes);
        while (end > limit)
        {
            var chunk = (int)Math.Min(Window, end - limit);
            var start = end - chunk;
            ReadExactly(file, buffer.AsSpan(0, chunk), start, path);
            for (var at = chunk - TarHeader.BlockSize; at >= 0; at -= TarHeader.BlockSize)
            {
                var block = buffer.AsSpan(at, TarHeader.BlockSize);
                var blockOffset = start + at;
                if (contentEnd < 0)
                {
                    if (TarHeader.IsZeroBlock(block))
                    {
                        zeros += TarHeader.BlockSize;
                        if (zeros > MaxTrailingZeros)
                        {
                            throw Incomplete(path, $"it ends with more than {MaxTrailingZeros} zero bytes");
                        }

                        continue;
                    }

                    if (zeros < 2 * TarHeader.BlockSize)
                    {
                        throw Incomplete(path, "it does not end with the two zero blocks that end a tar archive (truncated?)");
                    }

                    contentEnd = blockOffset + TarHeader.BlockSize;
                }

                var header = TarHeader.Inspect(block);
                if (header.Name != MemberNames.Trailer || !header.ChecksumOk || header.Flavour == TarFlavour.Unknown || header.Size < 0)
                {
                    continue;
                }

                var padded = header.Size + TarHeader.PaddingFor(header.Size);
                if (blockOffset + TarHeader.BlockSize + padded == contentEnd)
                {
                    return (blockOffset, header.Size);
                }
            }

            end = start;
        }

        throw Incomplete(path, "no trailer (virtbackup/trailer.json) at its end: the stream is incomplete or not a VirtBackup stream");
    }

    /// <summary>How far back the trailer's header may lie: ~250 bytes of JSON per member, so a million members.</summary>
    private const long MaxTrailerBytes = 256L * 1024 * 1024;

    public static void ReadExactly(SafeFileHandle file, Span<byte> into, long offset, string path)
    {
        var done = 0;
        while (done < into.Length)
        {
            var n = RandomAccess.Read(file, into[done..], offset + done);
            if (n == 0)
            {
                throw new StreamFormatException(path, $"the file ends at byte {offset + done} while {into.Length - done} more bytes were expected");
            }

            done += n;
        }
    }

    private static StreamFormatException Incomplete(string path, string problem) => new(MemberNames.Trailer, $"'{path}': {problem}");
}
