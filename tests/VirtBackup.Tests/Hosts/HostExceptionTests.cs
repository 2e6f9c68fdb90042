using VirtBackup.Core.Hosts.Local;

namespace VirtBackup.Tests.Hosts;

/// <summary>One failure type for host operations: what fails on this machine and over SSH is a <see cref="HostException"/>.</summary>
public sealed class HostExceptionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vbt-host-errors-").FullName;

    [Fact(Timeout = 60_000)]
    public async Task A_local_file_that_is_not_there_is_a_refused_host_exception_naming_the_operation_and_the_host()
    {
        var missing = Path.Combine(_directory, "none.fd");

        var e = await Assert.ThrowsAsync<HostException>(() => new LocalHostFiles().ReadFileAsync(missing, CancellationToken.None));

        Assert.Equal(("this host", $"read file '{missing}'", ErrorCategory.Refused), (e.Host, e.Operation, e.Category));
        Assert.IsType<FileNotFoundException>(e.InnerException);
        Assert.StartsWith($"read file '{missing}' on this host: ", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_local_write_into_a_missing_directory_is_a_host_exception_and_leaves_nothing()
    {
        var target = Path.Combine(_directory, "no-such-dir", "x");

        await Assert.ThrowsAsync<HostException>(
            () => new LocalHostFiles().WriteFileAsync(target, new byte[] { 1 }, UnixFileMode.UserRead, null, null, CancellationToken.None));

        Assert.Empty(Directory.EnumerateFileSystemEntries(_directory));
    }

    [Fact]
    public void The_remote_and_the_tool_failures_are_host_exceptions_with_their_exit_categories()
    {
        var remote = new RemoteException("root@h:22", "read file '/x'", 1, "no", "read file '/x' on root@h:22: no");
        var tool = new ToolException("qemu-img failed");

        Assert.Equal((ErrorCategory.Refused, "root@h:22"), (((HostException)remote).Category, ((HostException)remote).Host));
        Assert.Equal((ErrorCategory.DiskTransfer, "this host"), (((HostException)tool).Category, ((HostException)tool).Host));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
