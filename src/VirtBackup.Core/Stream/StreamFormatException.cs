namespace VirtBackup.Core.Stream;

/// <summary>
/// The backup stream is not a complete, intact VirtBackup stream: it is truncated, corrupted, reordered,
/// hostile or simply not ours. <see cref="Member"/> names the tar member concerned (or a description of the
/// position when no member name can be trusted) and the message says what is wrong with it.
/// </summary>
public sealed class StreamFormatException : VirtBackupException
{
    public StreamFormatException(string member, string problem, long? streamOffset = null, Exception? inner = null)
        : base(BuildMessage(member, problem, streamOffset), inner)
    {
        Member = member;
        Problem = problem;
        StreamOffset = streamOffset;
    }

    public override ErrorCategory Category => ErrorCategory.InvalidStream;

    /// <summary>The member the problem concerns, e.g. <c>disks/vda/0000000000400000.zst</c>.</summary>
    public string Member { get; }

    /// <summary>What is wrong with it, without the member name.</summary>
    public string Problem { get; }

    /// <summary>Byte offset in the stream of the header or data the problem was found at, when known.</summary>
    public long? StreamOffset { get; }

    private static string BuildMessage(string member, string problem, long? offset) =>
        offset is { } o
            ? $"Invalid backup stream: member '{member}' (at stream byte {o}): {problem}"
            : $"Invalid backup stream: member '{member}': {problem}";
}
