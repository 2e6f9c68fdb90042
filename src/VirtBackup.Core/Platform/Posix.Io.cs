using System.Runtime.InteropServices;

namespace VirtBackup.Core.Platform;

/// <summary>
/// read(2), write(2) and lseek(2) on a raw file descriptor: at the offset the descriptor shares with every other
/// process holding it (the shell, the next command), unlike .NET's file streams, which keep a position of their own
/// and use pread/pwrite. EINTR is retried; EAGAIN (someone made the descriptor non-blocking) waits in poll(2).
/// Failures are <see cref="IOException"/> whose HResult is the errno (EPIPE = 32: the reader went away).
/// </summary>
internal static partial class Posix
{
    private const int Eintr = 4;
    private const int Eagain = 11;
    private const int Espipe = 29;
    private const short PollIn = 0x1;
    private const short PollOut = 0x4;

    /// <summary>One read(2) of up to <paramref name="buffer"/>'s length; 0 at the end of the input.</summary>
    public static unsafe int Read(int fd, Span<byte> buffer, string what)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var got = NativeRead(fd, p, (nuint)buffer.Length);
                if (got >= 0)
                {
                    return (int)got;
                }

                WaitOrThrow(fd, PollIn, $"reading {what} failed");
            }
        }
    }

    /// <summary>write(2) until all of <paramref name="buffer"/> is written (a pipe or socket may take less per call).</summary>
    public static unsafe void Write(int fd, ReadOnlySpan<byte> buffer, string what)
    {
        fixed (byte* start = buffer)
        {
            var p = start;
            var left = (nuint)buffer.Length;
            while (left > 0)
            {
                var wrote = NativeWrite(fd, p, left);
                if (wrote >= 0)
                {
                    p += wrote;
                    left -= (nuint)wrote;
                    continue;
                }

                WaitOrThrow(fd, PollOut, $"writing {what} failed");
            }
        }
    }

    /// <summary>lseek(2) of the shared offset; null when the descriptor cannot seek (a pipe, socket or terminal).</summary>
    public static long? Seek(int fd, long offset, SeekOrigin origin, string what)
    {
        var at = NativeLseek(fd, offset, (int)origin); // SeekOrigin's values are SEEK_SET, SEEK_CUR, SEEK_END
        if (at >= 0)
        {
            return at;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == Espipe ? null : throw new IOException($"seeking {what} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>Whether lseek(2) works on <paramref name="fd"/>: a regular file or block device, not a pipe, socket or terminal.</summary>
    public static bool IsSeekable(int fd) => NativeLseek(fd, 0, (int)SeekOrigin.Current) >= 0;

    /// <summary>After a failed call: returns to retry it (EINTR; EAGAIN once poll says it is ready), else throws.</summary>
    private static unsafe void WaitOrThrow(int fd, short events, string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        if (errno == Eintr)
        {
            return;
        }

        if (errno == Eagain)
        {
            var entry = new PollEntry { Fd = fd, Events = events };
            if (NativePoll(&entry, 1, -1) >= 0 || Marshal.GetLastPInvokeError() == Eintr)
            {
                return;
            }

            errno = Marshal.GetLastPInvokeError();
        }

        throw new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollEntry
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint NativeRead(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint NativeWrite(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long NativeLseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int NativePoll(PollEntry* entries, nuint count, int timeout);
}
