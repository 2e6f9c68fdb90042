namespace VirtBackup.Tests.Restore;

/// <summary><c>restore</c> through the real executable: options, exit codes, what lands on disk.</summary>
public class RestoreCliTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_full_and_an_incremental_restored_with_a_target_root_exit_0_and_write_no_stdout()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();
        var inc = ChainFixtures.Next(full, 2, 100);

        var first = await VirtBackupCli.RunAsync(["restore", "--target-root", tree.Root, "--as", "cli"], new MemoryStream(await ChainFixtures.BuildAsync(full)));
        var second = await VirtBackupCli.RunAsync(["restore", "--target-root", tree.Root, "--as", "cli"], new MemoryStream(await ChainFixtures.BuildAsync(inc)));

        Assert.True(first.ExitCode == 0 && second.ExitCode == 0, first.StandardError + second.StandardError);
        Assert.Empty(first.StandardOutput);
        Assert.Equal(ChainFixtures.Image(inc, "vda"),
            await RestoreRoundTripTests.ReadImageAsync(tree.Disk("vda", Core.Stream.DiskFormat.Qcow2, "cli"), Core.Stream.DiskFormat.Qcow2, ChainFixtures.DiskSize));
        Assert.Contains("restore of cli complete: checkpoint 'virtbackup-chain-a-0002' of chain 'chain-a' (2 streams applied", second.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_chain_gap_exits_4_and_an_existing_target_without_force_exits_4()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();
        var inc2 = ChainFixtures.Next(ChainFixtures.Next(full, 2, 100), 3, 200);
        var args = new[] { "restore", "--format", "raw", "--target-root", tree.Root };
        await VirtBackupCli.RunAsync(args, new MemoryStream(await ChainFixtures.BuildAsync(full)));

        var gap = await VirtBackupCli.RunAsync(args, new MemoryStream(await ChainFixtures.BuildAsync(inc2)));
        var again = await VirtBackupCli.RunAsync(args, new MemoryStream(await ChainFixtures.BuildAsync(full)));

        Assert.Equal(4, gap.ExitCode);
        Assert.Contains("it continues from checkpoint 'virtbackup-chain-a-0002'", gap.StandardError);
        Assert.Equal(4, again.ExitCode);
        Assert.Contains("would replace what exists", again.StandardError);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("--define cannot be combined with --target-root", "--define", "--target-root", "/tmp/x")]
    [InlineData("--as '../x': the name must start with", "--as", "../x")]
    [InlineData("--format takes one of qcow2|raw, not 'vmdk'", "--format", "vmdk")]
    [InlineData("the disk directory 'relative' must be an absolute path", "--disk-dir", "relative")]
    public async Task Invalid_options_exit_2_before_reading_the_stream(string problem, params string[] options)
    {
        var result = await VirtBackupCli.RunAsync(["restore", .. options], new MemoryStream([1, 2, 3]));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(problem, result.StandardError);
    }
}
