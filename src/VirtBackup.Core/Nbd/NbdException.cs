namespace VirtBackup.Core.Nbd;

/// <summary>
/// An NBD operation failed. <see cref="Command"/> names what was being done (READ, WRITE, BLOCK_STATUS,
/// NBD_OPT_GO, connect, ...), <see cref="Offset"/>/<see cref="Length"/> the affected range when there is one.
/// <see cref="IsServerError"/> is true when the server broke the protocol (malformed or unexpected reply,
/// connection dropped mid-reply): the message then contains "server error" and blames the server.
/// <see cref="ServerErrno"/> is set when the server itself reported an error for the request (e.g. EIO).
/// </summary>
public sealed class NbdException(
    string message, string command, long? offset = null, long? length = null, bool isServerError = false, uint? serverErrno = null, Exception? inner = null)
    : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.DiskTransfer;

    /// <summary>The NBD command, option or phase that failed.</summary>
    public string Command { get; } = command;

    /// <summary>The request offset, when the failure concerns a range.</summary>
    public long? Offset { get; } = offset;

    /// <summary>The request length, when the failure concerns a range.</summary>
    public long? Length { get; } = length;

    /// <summary>The server violated the protocol or dropped the connection (a server-side bug or crash).</summary>
    public bool IsServerError { get; } = isServerError;

    /// <summary>The NBD error number the server returned for the request (EIO = 5, ENOSPC = 28, ...).</summary>
    public uint? ServerErrno { get; } = serverErrno;

    /// <summary>"NBD READ at offset 1048576 (length 65536)" or "NBD FLUSH".</summary>
    internal static string Describe(string command, long? offset, long? length) =>
        offset is null ? $"NBD {command}"
        : length is null ? $"NBD {command} at offset {offset}"
        : $"NBD {command} at offset {offset} (length {length})";

    /// <summary>The server sent something the protocol forbids.</summary>
    internal static NbdException ServerViolation(string command, long? offset, long? length, string problem, Exception? inner = null) =>
        new($"{Describe(command, offset, length)}: server error: {problem}. This is likely a bug in the NBD server.",
            command, offset, length, isServerError: true, inner: inner);

    /// <summary>The server reported an error for the request.</summary>
    internal static NbdException ServerReported(string command, long? offset, long? length, uint errno, string? serverMessage, long? errorOffset = null)
    {
        var at = errorOffset is null || errorOffset == offset ? "" : $" at offset {errorOffset}";
        var text = string.IsNullOrWhiteSpace(serverMessage) ? "" : $": {serverMessage}";
        return new($"{Describe(command, offset, length)}: the server failed the request{at} with {NbdProtocol.ErrnoName(errno)}{text}",
            command, offset, length, serverErrno: errno);
    }
}
