using VirtBackup.Core.Hosts.Local;

namespace VirtBackup.Tests.Reliability;

/// <summary>The repair aborts only jobs whose NBD socket lives in a virtbackup job directory.</summary>
public class JobRuntimeDirectoryTests
{
    private const string Uuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0";

    [Theory]
    [InlineData($"<server transport='unix' socket='/run/virtbackup/{Uuid}-4242/nbd.sock'/>", true)]
    [InlineData($"<server transport='unix' socket='/tmp/virtbackup-102/{Uuid}-4242/nbd.sock'/>", true)]
    [InlineData($"<server transport='unix' socket='/run/virtbackup/{Uuid}-Ab3xZ9/nbd.sock'/>", true)]
    [InlineData("<server transport='unix' socket='/tmp/someone-else/nbd.sock'/>", false)]
    [InlineData($"<server transport='unix' socket='/tmp/evil/run/virtbackup/{Uuid}/nbd.sock'/>", false)]
    [InlineData("<server transport='tcp' name='localhost' port='10809'/>", false)]
    public void A_job_is_ours_only_when_its_socket_is_in_a_virtbackup_job_directory(string backupXml, bool ours) =>
        Assert.Equal(ours, JobRuntimeDirectory.IsOurs(backupXml));

    [Fact]
    public void The_job_directories_live_in_run_for_root_and_in_an_own_tmp_directory_for_other_users()
    {
        Assert.Equal("/run/virtbackup", JobRuntimeDirectory.RootFor(0));
        Assert.Equal("/tmp/virtbackup-102", JobRuntimeDirectory.RootFor(102));
    }
}
