using System.Runtime.InteropServices;
using System.Text;
using VirtBackup.Core.Platform;

namespace VirtBackup.Tests.Platform;

/// <summary>
/// <see cref="FileDescriptorStream"/> on the kinds of descriptor a shell hands a filter: regular files (also opened
/// with O_APPEND) whose offset is shared, pipes and sockets. The CLI tests show it on stdin and stdout; these show
/// the descriptor kinds a shell redirection cannot make cheaply (a socketpair) and the error a gone reader gives.
/// </summary>
public sealed partial class FileDescriptorStreamTests : IDisposable
{
    private const int OpenWriteOnly = 0x1;
    private const int OpenReadWrite = 0x2;
    private const int OpenCreate = 0x40;
    private const int OpenAppend = 0x400;
    private const int SocketUnixDomain = 1;
    private const int SocketStream = 1;

    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-fdstream-").FullName;
    private readonly List<int> _fds = [];

    public void Dispose()
    {
        foreach (var fd in _fds)
        {
            Close(fd);
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Fact(Timeout = 10_000)]
    public async Task Writes_to_a_regular_file_land_at_the_offset_shared_with_a_duplicate_descriptor()
    {
        var path = Path.Combine(_dir, "log");
        var fd = Track(Open(path, OpenWriteOnly | OpenCreate, 0x180));
        var other = Track(Dup(fd));
        var stream = new FileDescriptorStream(fd, FileAccess.Write, "stdout");

        WriteRaw(other, "a\n");
        await stream.WriteAsync("from the stream\n"u8.ToArray());
        WriteRaw(other, "b\n");

        Assert.Equal("a\nfrom the stream\nb\n", File.ReadAllText(path));
        Assert.True(stream.CanSeek);
        Assert.Equal(20, stream.Position);
    }

    [Fact(Timeout = 10_000)]
    public async Task Async_writes_to_a_file_opened_with_O_APPEND_append_after_every_other_writer()
    {
        var path = Path.Combine(_dir, "log");
        File.WriteAllText(path, "old\n");
        var fd = Track(Open(path, OpenWriteOnly | OpenAppend, 0));
        var other = Track(Open(path, OpenWriteOnly | OpenAppend, 0));
        var stream = new FileDescriptorStream(fd, FileAccess.Write, "stdout");

        await stream.WriteAsync("first\n"u8.ToArray());
        WriteRaw(other, "between\n");
        await stream.WriteAsync("second\n"u8.ToArray());

        Assert.Equal("old\nfirst\nbetween\nsecond\n", File.ReadAllText(path));
    }

    [Fact(Timeout = 10_000)]
    public async Task Reads_of_a_regular_file_move_the_shared_offset_by_exactly_what_they_returned_and_a_seek_gives_bytes_back()
    {
        var path = Path.Combine(_dir, "in");
        File.WriteAllText(path, "0123456789");
        var fd = Track(Open(path, OpenReadWrite, 0));
        var other = Track(Dup(fd));
        var stream = new FileDescriptorStream(fd, FileAccess.Read, "stdin");
        var buffer = new byte[4];

        Assert.Equal(4, await stream.ReadAsync(buffer));
        Assert.Equal("4", ReadRaw(other, 1));
        Assert.Equal(2, stream.Seek(-3, SeekOrigin.Current));
        Assert.Equal("234", ReadRaw(other, 3));
        Assert.Equal(10, stream.Length);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_socket_carries_bytes_both_ways_cannot_seek_and_reads_0_once_the_peer_is_gone()
    {
        var (mine, peer) = SocketPair();
        var output = new FileDescriptorStream(mine, FileAccess.Write, "stdout");
        var input = new FileDescriptorStream(peer, FileAccess.Read, "stdin");
        var payload = new byte[1 << 20]; // larger than a socket buffer: the write goes out in several write(2) calls
        Random.Shared.NextBytes(payload);

        var writing = output.WriteAsync(payload).AsTask();
        var received = new byte[payload.Length];
        await input.ReadExactlyAsync(received);
        await writing;
        Close(mine);
        _fds.Remove(mine);

        Assert.Equal(payload, received);
        Assert.Equal(0, await input.ReadAsync(new byte[1]));
        Assert.False(input.CanSeek);
        Assert.Throws<NotSupportedException>(() => input.Seek(0, SeekOrigin.Begin));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_write_to_a_pipe_whose_reader_went_away_fails_with_EPIPE_as_an_IOException()
    {
        var fds = new int[2];
        Assert.Equal(0, Pipe(fds));
        Track(fds[1]);
        Close(fds[0]);
        var stream = new FileDescriptorStream(fds[1], FileAccess.Write, "stdout");

        var e = await Assert.ThrowsAsync<IOException>(() => stream.WriteAsync(new byte[100]).AsTask());

        Assert.Equal(32, e.HResult);
        Assert.Equal("writing stdout failed: Broken pipe", e.Message);
        Assert.False(stream.CanSeek);
    }

    private int Track(int fd)
    {
        Assert.True(fd >= 0, $"errno {Marshal.GetLastPInvokeError()}");
        _fds.Add(fd);
        return fd;
    }

    private (int, int) SocketPair()
    {
        var fds = new int[2];
        Assert.Equal(0, NativeSocketPair(SocketUnixDomain, SocketStream, 0, fds));
        return (Track(fds[0]), Track(fds[1]));
    }

    private static void WriteRaw(int fd, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(bytes.Length, (int)NativeWrite(fd, bytes, (nuint)bytes.Length));
    }

    private static string ReadRaw(int fd, int count)
    {
        var bytes = new byte[count];
        Assert.Equal(count, (int)NativeRead(fd, bytes, (nuint)count));
        return Encoding.ASCII.GetString(bytes);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "pipe", SetLastError = true)]
    private static partial int Pipe([Out] int[] fds);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static partial int NativeSocketPair(int domain, int type, int protocol, [Out] int[] fds);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint NativeWrite(int fd, byte[] buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint NativeRead(int fd, byte[] buffer, nuint count);
}
