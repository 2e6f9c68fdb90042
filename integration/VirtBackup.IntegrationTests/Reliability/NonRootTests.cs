namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// Backups as a user other than root (docs/RELIABILITY.md, "Non-root backups"): the swtpm user <c>tss</c>, member of
/// <c>libvirt</c> (libvirt's socket) and <c>libvirt-qemu</c> (QEMU's files and the job's NBD socket), with the NVRAM
/// file made group-readable, can back up; a user that only belongs to the swtpm group cannot read the TPM state
/// (0700) and gets the preflight message with nothing touched. Group membership is given with setpriv, which gives
/// the process exactly the credentials a real membership would.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class NonRootTests
{
    private const string AsTss = "--reuid tss --regid tss --groups libvirt,libvirt-qemu";
    private const string AsNobodyInSwtpmGroup = "--reuid nobody --regid nogroup --groups libvirt,libvirt-qemu,tss";
    private const string AsNobody = "--reuid nobody --regid nogroup --groups libvirt";

    [Fact(Timeout = 180_000)]
    public async Task The_swtpm_user_in_groups_libvirt_and_libvirt_qemu_backs_up_and_the_stream_restores_byte_equal()
    {
        await AssertSocketIsForGroupLibvirtAsync();
        await using var lab = await FaultLab.CreateAsync();
        await LabHost.RunAsync("chmod", ["g+r", lab.Vm.NvramPath]);
        var state = await StateDirectoryForAsync("tss");
        var uid = (await LabHost.RunAsync("id", ["-u", "tss"])).Trim();
        try
        {
            using var backup = CliProcess.Start(Arguments(lab, state), runAs: AsTss);
            var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(120));

            Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}: {outcome.StandardError}");
            await lab.RestoresByteEqualAsync(outcome.StandardOutput);
            Assert.Equal("running", lab.Describe().Split(',')[0]);
            Assert.Equal($"tss:tss 711", (await LabHost.RunAsync("stat", ["-c", "%U:%G %a", JobRuntimeDirectory.RootFor(int.Parse(uid))])).Trim());
            Assert.Empty(Directory.GetDirectories(JobRuntimeDirectory.RootFor(int.Parse(uid)), $"{lab.Vm.Uuid}-*"));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Theory(Timeout = 180_000)]
    [InlineData(AsNobodyInSwtpmGroup, true, "cannot read the TPM state directory", "membership in the group is not enough")]
    [InlineData(AsNobody, false, "cannot read the UEFI NVRAM file", "after 'chmod g+r' on this file")]
    public async Task A_user_without_read_access_gets_the_preflight_message_with_exit_4_and_the_vm_is_not_touched(
        string credentials, bool nvramGroupReadable, string message, string advice)
    {
        await AssertSocketIsForGroupLibvirtAsync();
        await using var lab = await FaultLab.CreateAsync();
        await lab.NextBackupRestoresByteEqualAsync(); // as root: a committed checkpoint that must survive
        if (nvramGroupReadable)
        {
            await LabHost.RunAsync("chmod", ["g+r", lab.Vm.NvramPath]);
        }

        var state = await StateDirectoryForAsync("nobody");
        try
        {
            using var backup = CliProcess.Start(Arguments(lab, state), runAs: credentials);
            var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.True(outcome.ExitCode == 4, $"exit {outcome.ExitCode}: {outcome.StandardError}");
            Assert.Contains(message, outcome.StandardError);
            Assert.Contains(advice, outcome.StandardError);
            Assert.Contains("the VM was not touched", outcome.StandardError);
            Assert.Empty(outcome.StandardOutput);
            Assert.Equal("running", lab.Describe()); // no job, no uncommitted checkpoint, no marker
            lab.AssertClean();                      // and the committed checkpoint is still there
            Assert.False(File.Exists(Path.Combine(state, lab.Vm.Uuid, "paused-by-virtbackup")));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    private static string[] Arguments(FaultLab lab, string state) =>
        ["backup", "--domain", lab.Vm.Name, "--level", "auto", "--state-dir", state, "--log-level", "debug"];

    /// <summary>A state directory the user owns (the lab's own work directory is root's, 0700).</summary>
    private static async Task<string> StateDirectoryForAsync(string user)
    {
        var directory = Directory.CreateTempSubdirectory("vbt-nonroot-").FullName;
        await LabHost.RunAsync("chown", [user, directory]);
        return directory;
    }

    private static async Task AssertSocketIsForGroupLibvirtAsync()
    {
        await LabHost.EnsureDaemonsAsync();
        var socket = (await LabHost.RunAsync("stat", ["-L", "-c", "%G %a", "/run/libvirt/libvirt-sock"])).Trim();
        Assert.True(socket == "libvirt 770",
            $"libvirt's socket is '{socket}', not 'libvirt 770': libvirtd runs without start-daemons.sh's libvirtd.conf; run integration/lab/restart-libvirtd.sh once");
    }
}
