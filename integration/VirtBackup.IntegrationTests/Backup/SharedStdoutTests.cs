using System.Text;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// Backups written in turn to one stdout file the shell shares (issue 10): each lands after the one before it, where
/// a backup that wrote with pwrite at its own position overwrote the first stream with the second.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class SharedStdoutTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-stdout-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact(Timeout = 300_000)]
    public async Task Two_copy_backups_in_one_subshell_redirected_to_a_file_give_two_whole_streams_that_verify_one_after_the_other()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "32M", fill: true);
        using var backups = new BackupFixture(vm);
        var backup = $"\"$VB\" backup --domain {vm.Name} --level copy --state-dir '{backups.StateDirectory}'";

        var shell = await Cli.Wrap("bash")
            .WithArguments(["-c",
                $"( {backup} 2>b1; echo \"backup $?\" >&3; {backup} 2>b2; echo \"backup $?\" >&3 ) 3>&1 > two.tar; " +
                "{ \"$VB\" verify 2>v1; echo \"verify $?\"; \"$VB\" verify 2>v2; echo \"verify $?\"; } < two.tar"])
            .WithWorkingDirectory(_work)
            .WithEnvironmentVariables(e => e.Set("VB", VirtBackupCli.ExecutablePath))
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(Encoding.UTF8);

        Assert.True(shell.StandardOutput == "backup 0\nbackup 0\nverify 0\nverify 0\n",
            shell.StandardOutput + string.Concat(new[] { "b1", "b2", "v1", "v2" }.Select(f => File.ReadAllText(Path.Combine(_work, f)))));
        var (first, second, length) = await SplitAsync(Path.Combine(_work, "two.tar"));
        Assert.Equal(length, first.Bytes.Length + second.Bytes.Length);
        Assert.Equal((BackupLevel.Copy, vm.Name, BackupLevel.Copy, vm.Name),
            (first.Manifest.Level, first.Manifest.DomainName, second.Manifest.Level, second.Manifest.DomainName));
        Assert.True(first.Manifest.CreatedUtc <= second.Manifest.CreatedUtc);
        Assert.Equal(first.Data["vda"].Keys, second.Data["vda"].Keys);
    }

    /// <summary>The two streams of the file, cut where a reader that stops at the end of its stream leaves the position.</summary>
    private static async Task<(ParsedStream First, ParsedStream Second, long Length)> SplitAsync(string path)
    {
        var bytes = await File.ReadAllBytesAsync(path);
        await using var file = File.OpenRead(path);
        await new BackupStreamReader(file, new ReaderOptions { StopAtEndOfArchive = true }).VerifyAsync();
        var cut = (int)file.Position;
        Assert.True(cut < bytes.Length, $"{path} holds one stream of {cut} bytes and nothing after it");
        return (await ParsedStream.ReadAsync(bytes[..cut]), await ParsedStream.ReadAsync(bytes[cut..]), bytes.Length);
    }
}
