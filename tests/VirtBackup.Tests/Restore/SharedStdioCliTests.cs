using System.Text;

namespace VirtBackup.Tests.Restore;

/// <summary>
/// stdin and stdout as a shell shares them (issue 10): the real executable reads and writes at the offset it shares
/// with the shell and the commands before and after it, on regular files (also opened with <c>&gt;&gt;</c>) as on
/// pipes, and a reader of stdin leaves whatever follows its stream to the next reader.
/// </summary>
public sealed class SharedStdioCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtbackup-stdio-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A full stream (checkpoint 0001) and the incremental after it (0002).</summary>
    private static async Task<(byte[] Full, byte[] Inc)> TwoStreamsAsync()
    {
        var full = ChainFixtures.Full();
        return (await ChainFixtures.BuildAsync(full), await ChainFixtures.BuildAsync(ChainFixtures.Next(full, 2, 100)));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("< two.tar")]
    [InlineData("< <(cat full.tar inc.tar)")]
    public async Task Verify_accepts_two_concatenated_streams_one_after_the_other_from_one_shared_stdin(string stdin)
    {
        var (full, inc) = await TwoStreamsAsync();
        Save("full.tar", full);
        Save("inc.tar", inc);
        Save("two.tar", [.. full, .. inc]);

        var shell = await ShellAsync(
            $"{{ \"$VB\" verify 2>e1; echo \"first $?\"; \"$VB\" verify 2>e2; echo \"second $?\"; \"$VB\" verify 2>e3; echo \"third $?\"; }} {stdin}");

        Assert.Equal("first 0\nsecond 0\nthird 6\n", shell);
        Assert.Contains("stream verified: complete and intact; full backup of win11 (4dea22b3-1d52-d8f3-2516-782e98ab3fa0), checkpoint virtbackup-chain-a-0001,", Read("e1"));
        Assert.Contains("stream verified: complete and intact; inc backup of win11 (4dea22b3-1d52-d8f3-2516-782e98ab3fa0), checkpoint virtbackup-chain-a-0002,", Read("e2"));
        Assert.Contains("the stream ends at byte 0, after 'nothing', without a trailer", Read("e3"));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("< two.tar", 0)]
    [InlineData("< two.tar", 9216)]
    [InlineData("< <(cat two.tar)", 0)]
    public async Task Verify_leaves_stdin_exactly_at_the_start_of_what_follows_its_stream(string stdin, int padding)
    {
        var (full, inc) = await TwoStreamsAsync();
        Save("two.tar", [.. full, .. new byte[padding], .. inc]);

        var shell = await ShellAsync($"{{ \"$VB\" verify 2>e1; echo \"verify $?\"; cat > rest; }} {stdin}");

        Assert.Equal("verify 0\n", shell);
        Assert.Equal(inc, File.ReadAllBytes(Path.Combine(_dir, "rest")));
    }

    [Fact(Timeout = 60_000)]
    public async Task Garbage_after_a_stream_in_a_stdin_file_is_still_refused()
    {
        var (full, _) = await TwoStreamsAsync();
        Save("junk.tar", [.. full, .. "garbage"u8.ToArray()]);

        var shell = await ShellAsync("\"$VB\" verify < junk.tar 2>e1; echo \"verify $?\"");

        Assert.Equal("verify 6\n", shell);
        Assert.Contains($"data after the trailer at byte {full.Length}", Read("e1"));
    }

    [Fact(Timeout = 60_000)]
    public async Task List_output_lands_between_the_shell_writes_to_a_file_they_share()
    {
        var (full, _) = await TwoStreamsAsync();
        Save("full.tar", full);
        var listing = await ListingAsync(full);

        await ShellAsync("{ echo a; \"$VB\" list < full.tar; echo b; } > log");

        Assert.Equal([.. "a\n"u8.ToArray(), .. listing, .. "b\n"u8.ToArray()], File.ReadAllBytes(Path.Combine(_dir, "log")));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("echo a > log; \"$VB\" list < full.tar >> log; \"$VB\" list < inc.tar >> log; echo b >> log")]
    [InlineData("{ echo a; \"$VB\" list < full.tar; \"$VB\" list < inc.tar; echo b; } >> log")]
    [InlineData("( echo a; \"$VB\" list < full.tar; \"$VB\" list < inc.tar; echo b ) > log")]
    [InlineData("{ echo a; \"$VB\" list; \"$VB\" list; echo b; } < two.tar > log")]
    public async Task Two_listings_and_the_shell_writes_all_land_in_order_in_one_file(string script)
    {
        var (full, inc) = await TwoStreamsAsync();
        Save("full.tar", full);
        Save("inc.tar", inc);
        Save("two.tar", [.. full, .. inc]);
        var expected = "a\n"u8.ToArray().Concat(await ListingAsync(full)).Concat(await ListingAsync(inc)).Concat("b\n"u8.ToArray());

        await ShellAsync(script);

        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(_dir, "log")));
    }

    [Fact(Timeout = 60_000)]
    public async Task List_to_a_pipe_whose_reader_is_gone_exits_7_for_the_broken_pipe()
    {
        var (full, _) = await TwoStreamsAsync();
        Save("full.tar", full);

        // fd 4: the write end of a FIFO whose only reader (fd 3) is closed before list starts.
        var shell = await ShellAsync("mkfifo fifo; exec 3<>fifo 4>fifo 3<&-; \"$VB\" list < full.tar >&4 2>e1; echo \"list $?\"");

        Assert.Equal("list 7\n", shell);
        Assert.Contains("virtbackup list failed: writing stdout failed: Broken pipe", Read("e1"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Restore_applies_a_full_and_its_incremental_read_in_turn_from_one_stdin_file()
    {
        var full = ChainFixtures.Full();
        var next = ChainFixtures.Next(full, 2, 100);
        Save("two.tar", [.. await ChainFixtures.BuildAsync(full), .. await ChainFixtures.BuildAsync(next)]);
        using var tree = new RestoredTree();
        var root = tree.Root;

        var shell = await ShellAsync(
            $"{{ \"$VB\" restore --target-root '{root}' --format raw 2>e1; echo \"full $?\"; \"$VB\" restore --target-root '{root}' 2>e2; echo \"inc $?\"; }} < two.tar");

        Assert.True(shell == "full 0\ninc 0\n", shell + Read("e1") + Read("e2"));
        Assert.Equal(ChainFixtures.Image(next, "vda"), File.ReadAllBytes(tree.Disk("vda")));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("verify")]
    [InlineData("list")]
    [InlineData("restore --as copy")]
    public async Task A_reader_whose_stdin_the_shell_closed_exits_4_saying_what_to_do_instead_of_waiting_forever(string verb)
    {
        // The runtime's own pipe takes the free descriptor 0: reading it used to wait forever.
        var shell = await ShellAsync($"timeout 30 \"$VB\" {verb} <&- 2>e; echo \"exit $?\"");

        Assert.Equal("exit 4\n", shell);
        Assert.Contains("stdin was closed when virtbackup started (e.g. '<&-' or '>&-' in the shell): give the backup stream on stdin", Read("e"));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("backup --domain vbt-no-such-domain")]
    [InlineData("consolidate full.tar")]
    public async Task A_writer_whose_stdout_the_shell_closed_exits_4_before_it_starts(string verb)
    {
        Save("full.tar", await ChainFixtures.BuildAsync(ChainFixtures.Full()));

        var shell = await ShellAsync($"timeout 30 \"$VB\" {verb} >&- 2>e; echo \"exit $?\"");

        Assert.Equal("exit 4\n", shell);
        Assert.Contains("stdout was closed when virtbackup started ('>&-'): redirect stdout to a file or pipe it to your backup host", Read("e"));
    }

    /// <summary>What <c>list</c> prints for <paramref name="stream"/> on a pipe (never affected by shared offsets).</summary>
    private static async Task<byte[]> ListingAsync(byte[] stream)
    {
        var result = await VirtBackupCli.RunAsync(["list"], new MemoryStream(stream));
        Assert.Equal(0, result.ExitCode);
        return result.StandardOutput;
    }

    /// <summary>Runs <paramref name="script"/> in bash in the test's directory with $VB the executable; returns its stdout.</summary>
    private async Task<string> ShellAsync(string script)
    {
        var result = await CliWrap.Cli.Wrap("bash")
            .WithArguments(["-c", script])
            .WithWorkingDirectory(_dir)
            .WithEnvironmentVariables(e => e.Set("VB", VirtBackupCli.ExecutablePath))
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(Encoding.UTF8);
        Assert.True(result.ExitCode == 0, $"bash exit {result.ExitCode}: {result.StandardError}");
        return result.StandardOutput;
    }

    private void Save(string name, byte[] content) => File.WriteAllBytes(Path.Combine(_dir, name), content);

    private string Read(string name) => File.ReadAllText(Path.Combine(_dir, name));
}
