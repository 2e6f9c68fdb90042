using System.Runtime.InteropServices;

namespace VirtBackup.IntegrationTests.Libvirt;

[Collection(LabCollection.Name)]
public partial class LibvirtErrorOutputTests
{
    [Fact(Timeout = 30_000)]
    public async Task Libvirt_errors_reach_the_caller_as_exceptions_and_never_stderr()
    {
        await LabHost.EnsureDaemonsAsync();
        var captured = Path.GetTempFileName();
        try
        {
            var errors = new List<LibvirtException>();
            using (var capture = File.OpenWrite(captured))
            {
                // libvirt's default handler writes to fd 2 from native code: watch fd 2 itself.
                var saved = dup(2);
                dup2((int)capture.SafeFileHandle.DangerousGetHandle(), 2);
                try
                {
                    using var connection = LibvirtConnection.Open();
                    errors.Add(Assert.Throws<DomainNotFoundException>(() => connection.LookupByName("vbt-nothing-here")));
                    errors.Add(Assert.ThrowsAny<LibvirtException>(() => LibvirtConnection.Open("qemu:///nonsense")));
                }
                finally
                {
                    dup2(saved, 2);
                    close(saved);
                }
            }

            Assert.Equal(2, errors.Count);
            Assert.DoesNotContain("libvirt", await File.ReadAllTextAsync(captured), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            File.Delete(captured);
        }
    }

    [LibraryImport("libc")]
    private static partial int dup(int fd);

    [LibraryImport("libc")]
    private static partial int dup2(int fd, int fd2);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
