namespace VirtBackup.Tests.Verbs;

/// <summary>Invalid arguments exit 2 with a message that names the problem, before anything is touched.</summary>
public class InvalidArgumentTests
{
    [Theory(Timeout = 60000)]
    [InlineData(new[] { "backup" }, "--domain NAME is required")]
    [InlineData(new[] { "repair" }, "--domain NAME is required")]
    [InlineData(new[] { "backup", "--domain", "x", "--level", "weekly" }, "--level takes one of copy|full|inc|diff|auto, not 'weekly'")]
    [InlineData(new[] { "backup", "--domain", "x", "--compression", "lz4" }, "--compression takes one of zstd|none, not 'lz4'")]
    [InlineData(new[] { "backup", "--domain", "x", "--zstd-level", "99" }, "--zstd-level")]
    [InlineData(new[] { "backup", "--domain", "x", "--zstd-level", "fast" }, "--zstd-level")]
    [InlineData(new[] { "backup", "--domain" }, "--domain")]
    [InlineData(new[] { "backup", "--domain", "x", "--chain", "off site" }, "--chain: 'off site' is not a chain name (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit)")]
    [InlineData(new[] { "backup", "--domain", "x", "--chain", "../x" }, "--chain: '../x' is not a chain name")]
    [InlineData(new[] { "restore", "--format", "vmdk" }, "--format takes one of qcow2|raw, not 'vmdk'")]
    [InlineData(new[] { "restore", "--define", "--target-root", "/tmp/x" }, "--define")]
    [InlineData(new[] { "boot", "--as", "x", "--live-restore", "full.tar" }, "--live-restore needs --disk-dir DIR: the directory where the domain's images stay for good")]
    public async Task Invalid_arguments_exit_2_and_say_what_is_wrong(string[] args, string message)
    {
        var result = await VirtBackupCli.RunAsync(args, new MemoryStream());

        Assert.True(result.ExitCode == 2, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Empty(result.StandardOutput);
        Assert.Contains(message, result.StandardError);
    }
}
