namespace VirtBackup.Tests.Stream;

/// <summary>
/// <see cref="ReaderOptions.StopAtEndOfArchive"/>: a reader of a stream that more input may follow (stdin) consumes
/// its stream and nothing after it, so the next reader of the input starts at the next stream.
/// </summary>
public class StreamReaderEndOfArchiveTests
{
    private static readonly ReaderOptions Stopping = new() { StopAtEndOfArchive = true };

    [Fact(Timeout = 10_000)]
    public async Task On_an_unseekable_input_the_reader_consumes_exactly_its_stream_and_leaves_the_next_one_unread()
    {
        var first = (await StreamFixtures.BuildAsync(Compression.Zstd, seed: 1)).Stream;
        var second = (await StreamFixtures.BuildAsync(Compression.None, seed: 2)).Stream;
        var input = new MemoryStream([.. first, .. second], writable: false);
        var reader = new BackupStreamReader(new UnseekableStream(input), Stopping);

        await reader.VerifyAsync();

        Assert.Equal(first.Length, reader.Position);
        Assert.Equal(first.Length, input.Position);
        var rest = new BackupStreamReader(new UnseekableStream(input), Stopping);
        await rest.VerifyAsync();
        Assert.Equal(second.Length, rest.Position);
    }

    [Fact(Timeout = 10_000)]
    public async Task On_a_seekable_input_zero_padding_after_the_end_of_archive_is_consumed_and_the_position_is_left_at_the_next_header()
    {
        var first = (await StreamFixtures.BuildAsync(Compression.Zstd, seed: 1)).Stream;
        var second = (await StreamFixtures.BuildAsync(Compression.Zstd, seed: 2)).Stream;
        var input = new MemoryStream([.. first, .. new byte[9216], .. second], writable: false);

        await new BackupStreamReader(input, Stopping).VerifyAsync();

        Assert.Equal(first.Length + 9216, input.Position);
        await new BackupStreamReader(input, Stopping).VerifyAsync();
        Assert.Equal(input.Length, input.Position);
    }

    [Fact(Timeout = 10_000)]
    public async Task Garbage_in_place_of_the_end_of_archive_blocks_is_refused()
    {
        var stream = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;

        var e = await StreamFixtures.RefusedAsync([.. stream[..^1024], .. "garbage"u8.ToArray(), .. new byte[1017]], Stopping);

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains($"data after the trailer at byte {stream.Length - 1024}: the two end-of-archive zero blocks must follow the trailer", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stream_without_its_second_end_of_archive_block_is_truncated()
    {
        var stream = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;

        var e = await StreamFixtures.RefusedAsync(stream[..^512], Stopping);

        Assert.Equal(MemberNames.Trailer, e.Member);
        Assert.Contains("the stream ends without the two end-of-archive zero blocks after the trailer: it is truncated", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task On_a_seekable_input_garbage_after_the_end_of_archive_is_refused_and_left_unread()
    {
        var stream = (await StreamFixtures.BuildAsync(Compression.Zstd)).Stream;
        var input = new MemoryStream([.. stream, .. "garbage"u8.ToArray()], writable: false);

        var e = await Assert.ThrowsAsync<StreamFormatException>(() => new BackupStreamReader(input, Stopping).VerifyAsync());

        Assert.Contains($"data after the trailer at byte {stream.Length}: only zero blocks or another tar stream may follow the end of the archive", e.Message);
        Assert.Equal(stream.Length, input.Position);
    }
}
