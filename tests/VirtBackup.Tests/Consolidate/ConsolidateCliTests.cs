using VirtBackup.Tests.Nbd.Peers;
using VirtBackup.Tests.Reliability;

namespace VirtBackup.Tests.Consolidate;

/// <summary><c>consolidate</c> through the real executable: the stream on stdout, exit codes, memory.</summary>
public class ConsolidateCliTests(ITestOutputHelper output)
{
    [Fact(Timeout = 60_000)]
    public async Task Consolidate_writes_the_in_process_synthetic_full_on_stdout_and_exits_0()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        var (expected, _) = await chain.ConsolidateAsync();

        var result = await VirtBackupCli.RunAsync(["consolidate", .. chain.Paths]);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(expected, result.StandardOutput);
        Assert.Contains("consolidate of win11 complete: full at checkpoint 'virtbackup-chain-a-0004' of chain 'chain-a' from 4 stream(s)", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_corrupted_member_that_would_be_copied_exits_6_and_leaves_no_trailer()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        var name = MemberNames.DiskData("vdb", 65_536, Compression.Zstd);
        var member = TarSurgery.Records(chain.Streams[0]).Single(r => r.Name == name);
        var bytes = File.ReadAllBytes(chain.Paths[0]);
        bytes[member.ContentOffset + member.Size - 9] ^= 0x01;
        await File.WriteAllBytesAsync(chain.Paths[0], bytes);

        var result = await VirtVerbAsync(chain.Paths);

        Assert.Equal(6, result.ExitCode);
        Assert.Contains($"member '{name}': in '{chain.Paths[0]}': its stored bytes' SHA-256 differs from the trailer's", result.StandardError);
        Assert.DoesNotContain(MemberNames.Trailer, TarSurgery.Records(result.StandardOutput).Select(r => r.Name));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_missing_incremental_or_a_wrong_order_exits_4_before_writing_anything()
    {
        using var chain = await ConsolidatedChain.CreateAsync();
        var p = chain.Paths;

        var gap = await VirtVerbAsync([p[0], p[1], p[3]]);
        var swapped = await VirtVerbAsync([p[0], p[2], p[1], p[3]]);

        Assert.Equal((4, 4), (gap.ExitCode, swapped.ExitCode));
        Assert.Contains("continues from checkpoint 'virtbackup-chain-a-0003', but the stream before it is 'virtbackup-chain-a-0002'", gap.StandardError);
        Assert.Contains("continues from checkpoint 'virtbackup-chain-a-0002', but the stream before it is 'virtbackup-chain-a-0001'", swapped.StandardError);
        Assert.Empty(gap.StandardOutput);
        Assert.Empty(swapped.StandardOutput);
    }

    [Fact(Timeout = 60_000)]
    public async Task Consolidate_without_stream_files_exits_2()
    {
        var result = await VirtBackupCli.RunAsync(["consolidate"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("give the chain's stream files", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_terminal_on_stdout_is_refused_with_exit_4()
    {
        using var chain = await ConsolidatedChain.CreateAsync();

        // script(1) runs the command with a pseudo-terminal as its stdout and exits with its exit code.
        var result = await CliWrap.Cli.Wrap("script")
            .WithArguments(["-qec", $"{VirtBackupCli.ExecutablePath} consolidate {chain.Paths[0]}", "/dev/null"])
            .WithValidation(CliWrap.CommandResultValidation.None)
            .ExecuteBufferedAsync();

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("refusing to write a backup stream to a terminal", result.StandardOutput);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_64_GiB_sparse_disk_consolidates_with_the_memory_of_a_64_MiB_one()
    {
        var small = await RunSparseAsync(64L << 20);
        var large = await RunSparseAsync(64L << 30);
        output.WriteLine($"peak RSS: 64 MiB disk {small.PeakRss >> 20} MiB, 64 GiB disk {large.PeakRss >> 20} MiB");

        Assert.True(small.ExitCode == 0 && large.ExitCode == 0, small.StandardError + large.StandardError);
        Assert.InRange(large.PeakRss, 1, small.PeakRss + (24L << 20));
        Assert.InRange(large.PeakRss, 1, 256L << 20);
    }

    private static async Task<PeakRssRun> RunSparseAsync(long virtualSize)
    {
        using var dir = new TempDir();
        var paths = new List<string>();
        foreach (var stream in await SparseChain.BuildAsync(virtualSize))
        {
            paths.Add(dir.File($"{paths.Count}.tar"));
            await File.WriteAllBytesAsync(paths[^1], stream);
        }

        var run = await PeakRssRun.RunAsync(["consolidate", .. paths], []);
        if (run.ExitCode == 0)
        {
            var synthetic = dir.File("synthetic.tar");
            await File.WriteAllBytesAsync(synthetic, run.StandardOutput);
            var verify = await VirtBackupCli.RunAsync(["verify"], File.OpenRead(synthetic));
            Assert.True(verify.ExitCode == 0, verify.StandardError);
        }

        return run;
    }

    private static Task<CliResult> VirtVerbAsync(IReadOnlyList<string> paths) => VirtBackupCli.RunAsync(["consolidate", .. paths]);
}
