namespace VirtBackup.Tests.Verbs;

public class CommandLineTests
{
    [Fact(Timeout = 60000)]
    public async Task Help_lists_every_verb_and_the_exit_codes_on_stderr_and_nothing_on_stdout()
    {
        var result = await VirtBackupCli.RunAsync(["--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        foreach (var verb in new[] { "backup", "restore", "list", "verify" })
        {
            Assert.Contains($"  {verb} ", result.StandardError);
        }

        Assert.Contains("Exit codes:", result.StandardError);
        Assert.Contains("    6  the input stream is incomplete", result.StandardError);
    }

    [Fact(Timeout = 60000)]
    public async Task An_unknown_verb_exits_2_with_usage_on_stderr()
    {
        var result = await VirtBackupCli.RunAsync(["frobnicate"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.Contains("unknown verb 'frobnicate'", result.StandardError);
        Assert.Contains("Usage: virtbackup VERB", result.StandardError);
    }

    [Theory(Timeout = 60000)]
    [InlineData("backup", "--no-such-option", "unknown option '--no-such-option' for 'backup'")]
    [InlineData("list", "stray", "'list' takes no argument 'stray'")]
    [InlineData("verify", "--log-level=loud", "--log-level takes one of debug|info|warning|error, not 'loud'")]
    public async Task A_bad_option_exits_2_and_names_the_problem(string verb, string arg, string message)
    {
        var result = await VirtBackupCli.RunAsync([verb, arg]);

        Assert.Equal(2, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.Contains(message, result.StandardError);
    }

    [Fact(Timeout = 60000)]
    public async Task No_arguments_at_all_exit_2_with_the_overview()
    {
        var result = await VirtBackupCli.RunAsync([]);

        Assert.Equal(2, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.Contains("Verbs:", result.StandardError);
    }
}
