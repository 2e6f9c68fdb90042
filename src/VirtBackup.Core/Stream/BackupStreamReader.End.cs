namespace VirtBackup.Core.Stream;

/// <summary>The end of a stream that more input may follow (<see cref="ReaderOptions.StopAtEndOfArchive"/>).</summary>
public sealed partial class BackupStreamReader
{
    /// <summary>
    /// After the trailer: the two end-of-archive zero blocks, in one bounded read, so not a byte of what follows is
    /// consumed (on a pipe the reader stops there). On a seekable input the zero blocks after them are padding and
    /// consumed too; the first non-zero block is given back (lseek) to the next reader and must be a tar header.
    /// </summary>
    private async Task ReadEndOfThisArchiveAsync(CancellationToken cancellationToken)
    {
        const string who = MemberNames.Trailer;
        var start = _position;
        var end = new byte[2 * TarHeader.BlockSize];
        var got = await ReadUpToAsync(end, cancellationToken).ConfigureAwait(false);
        if (end.AsSpan(0, got).IndexOfAnyExcept((byte)0) is var nonZero and >= 0)
        {
            var raw = nonZero % TarHeader.BlockSize == 0 && nonZero + TarHeader.BlockSize <= got
                ? TarHeader.Inspect(end.AsSpan(nonZero, TarHeader.BlockSize))
                : default;
            throw raw is { ChecksumOk: true, NameIsPrintableAscii: true, Name.Length: > 0 }
                ? Fail(raw.Name, "member after the trailer: the trailer must be the last member", start + nonZero)
                : Fail(who, $"data after the trailer at byte {start + nonZero}: the two end-of-archive zero blocks must follow the trailer", start + nonZero);
        }
        if (got < end.Length)
        {
            throw Fail(who, "the stream ends without the two end-of-archive zero blocks after the trailer: it is truncated", start + got);
        }

        if (!_input.CanSeek)
        {
            return;
        }

        long zeros = got;
        while (true)
        {
            var at = _position;
            got = await ReadUpToAsync(_block, cancellationToken).ConfigureAwait(false);
            if (got == 0)
            {
                return;
            }

            if (_block.AsSpan(0, got).IndexOfAnyExcept((byte)0) is var first and >= 0)
            {
                // Not ours: give it back, so the next reader of the input starts right there.
                _input.Seek(-got, SeekOrigin.Current);
                _position = at;
                if (got < TarHeader.BlockSize || !TarHeader.Inspect(_block).ChecksumOk)
                {
                    throw Fail(who, $"data after the trailer at byte {at + first}: only zero blocks or another tar stream may follow the end of the archive", at + first);
                }

                return;
            }
            if (got < TarHeader.BlockSize)
            {
                throw Fail(who, "the stream does not end on a 512-byte block boundary after the trailer", at + got);
            }

            zeros += got;
            if (zeros > _options.MaxTrailingZeroBytes)
            {
                throw Fail(who, $"more than {_options.MaxTrailingZeroBytes} zero bytes after the trailer", start);
            }
        }
    }
}
