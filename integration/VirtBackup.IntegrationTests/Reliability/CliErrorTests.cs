namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>Errors that need libvirt to be found: each exits with its documented code and a message that says what to do.</summary>
[Collection(LabCollection.Name)]
public sealed class CliErrorTests
{
    [Theory(Timeout = 60_000)]
    [InlineData("backup")]
    [InlineData("repair")]
    public async Task An_unknown_domain_exits_3_with_not_found(string verb)
    {
        await LabHost.EnsureDaemonsAsync();
        var name = $"vbt-missing-{Guid.NewGuid():N}"[..24];
        var state = Directory.CreateTempSubdirectory("vbt-state-").FullName;
        try
        {
            var result = await VirtBackupCli.RunAsync([verb, "--domain", name, "--state-dir", state]);

            Assert.True(result.ExitCode == 3, $"exit {result.ExitCode}: {result.StandardError}");
            Assert.Contains($"Domain not found: no domain with matching name '{name}'", result.StandardError);
            Assert.Contains("Check the name or UUID with 'virsh list --all'", result.StandardError);
            Assert.Empty(result.StandardOutput);
            Assert.Empty(Directory.EnumerateFileSystemEntries(state));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_missing_or_relative_scratch_directory_and_a_bad_test_phase_are_refused_before_the_vm_is_touched()
    {
        await using var lab = await FaultLab.CreateAsync();
        string[] backup = ["backup", "--domain", lab.Vm.Name, "--state-dir", lab.StateDirectory];
        var missing = await VirtBackupCli.RunAsync([.. backup, "--scratch-dir", "/nonexistent/scratch"]);
        var relative = await VirtBackupCli.RunAsync([.. backup, "--scratch-dir", "scratch"]);
        var phase = await VirtBackupCli.RunAsync(lab.BackupArguments(), environment: new Dictionary<string, string?> { ["VIRTBACKUP_TEST_PAUSE_AT"] = "lunch" });

        Assert.True(missing.ExitCode == 4, missing.StandardError);
        Assert.Contains("the scratch directory '/nonexistent/scratch' does not exist", missing.StandardError);
        Assert.True(relative.ExitCode == 4, relative.StandardError);
        Assert.Contains("--scratch-dir must be an absolute path", relative.StandardError);
        Assert.True(phase.ExitCode == 2, phase.StandardError);
        Assert.Contains("VIRTBACKUP_TEST_PAUSE_AT='lunch' is not a phase: preflight, freeze, paused, backupBegin, state-read, streaming, finishing", phase.StandardError);
        Assert.Equal("running", lab.Describe());
        lab.AssertClean();
    }
}
