using System.Security.Cryptography;
using VirtBackup.Core.Capture;

namespace VirtBackup.IntegrationTests.Remote;

/// <summary>The operations restore and capture added to the host files behave the same here and over SSH.</summary>
[Collection(SshCollection.Name)]
public class HostFilesRestoreOperationsTests
{
    private const UnixFileMode Mode711 = (UnixFileMode)0b111_001_001;

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task A_prepared_state_read_returns_the_file_and_the_tree_as_they_are_when_it_is_done(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        Directory.CreateDirectory(scratch["tpm2/sub"]);
        var nvram = scratch["nvram/vm_VARS.fd"];
        Directory.CreateDirectory(scratch["nvram"]);
        await File.WriteAllBytesAsync(nvram, RandomNumberGenerator.GetBytes(540_672));
        await File.WriteAllTextAsync(scratch["tpm2/.lock"], string.Empty);
        await File.WriteAllTextAsync(scratch["tpm2/sub/b"], "before");
        await using var host = await HostFilesUnderTest.OpenAsync(kind);

        await using var read = await host.Files.PrepareStateReadAsync(nvram, scratch["tpm2"], CancellationToken.None);
        var later = RandomNumberGenerator.GetBytes(540_672);
        await File.WriteAllBytesAsync(nvram, later);
        await File.WriteAllTextAsync(scratch["tpm2/sub/b"], "after");
        var (file, tree) = await read.ReadAsync(CancellationToken.None);

        Assert.Equal(later, file);
        Assert.Equal([(".lock", ""), ("sub/b", "after")], tree.Select(f => (f.RelativePath, System.Text.Encoding.UTF8.GetString(f.Content))));
        await using var none = await host.Files.PrepareStateReadAsync(null, null, CancellationToken.None);
        Assert.Equal((null, 0), ((await none.ReadAsync(CancellationToken.None)).File, (await none.ReadAsync(CancellationToken.None)).Tree.Count));
        await using var onlyTree = await host.Files.PrepareStateReadAsync(null, scratch["tpm2"], CancellationToken.None);
        Assert.Equal(2, (await onlyTree.ReadAsync(CancellationToken.None)).Tree.Count);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_state_read_over_ssh_leaves_out_swtpms_temporary_files_as_the_capture_does_with_a_local_read()
    {
        // swtpm stores a new state in TMP2-00.permall (TMP-00.permall for a TPM 1.2) and renames it over the real file:
        // one can vanish between tar's listing and its read, so the remote tar never lists them.
        using var scratch = SshLab.CreateScratch();
        Directory.CreateDirectory(scratch["tpm2"]);
        foreach (var name in new[] { "tpm2-00.permall", "TMP2-00.permall", "TMP-00.permall", "aTMP2-00", ".lock" })
        {
            await File.WriteAllTextAsync(scratch["tpm2/" + name], name);
        }

        await using var local = await HostFilesUnderTest.OpenAsync("local");
        await using var ssh = await HostFilesUnderTest.OpenAsync("ssh");
        await using var localRead = await local.Files.PrepareStateReadAsync(null, scratch["tpm2"], CancellationToken.None);
        await using var sshRead = await ssh.Files.PrepareStateReadAsync(null, scratch["tpm2"], CancellationToken.None);
        var localTree = StateLocation.WithoutSwtpmTemporaryFiles((await localRead.ReadAsync(CancellationToken.None)).Tree);
        var sshTree = (await sshRead.ReadAsync(CancellationToken.None)).Tree;

        Assert.Equal([".lock", "aTMP2-00", "tpm2-00.permall"], sshTree.Select(f => f.RelativePath).Order(StringComparer.Ordinal));
        Assert.Equal(localTree.Select(f => f.RelativePath).Order(StringComparer.Ordinal), sshTree.Select(f => f.RelativePath).Order(StringComparer.Ordinal));
        Assert.Equal("tpm2-00.permall", System.Text.Encoding.UTF8.GetString(sshTree.Single(f => f.RelativePath == "tpm2-00.permall").Content));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_prepared_state_read_over_ssh_refuses_a_symbolic_link_and_an_unprepared_one_leaves_nothing_running()
    {
        using var scratch = SshLab.CreateScratch();
        Directory.CreateDirectory(scratch["tpm2"]);
        File.CreateSymbolicLink(scratch["tpm2/link"], "/etc/shadow");
        await File.WriteAllTextAsync(scratch["VARS.fd"], "nvram");
        await using var session = await SshLab.ConnectAsync();
        var files = new SshHostFiles(session);

        await using (var read = await files.PrepareStateReadAsync(scratch["VARS.fd"], scratch["tpm2"], CancellationToken.None))
        {
            var e = await Assert.ThrowsAsync<RemoteException>(() => read.ReadAsync(CancellationToken.None));
            Assert.EndsWith("'./link' is a SymbolicLink, not a regular file or directory", e.Message);
        }

        await using (await files.PrepareStateReadAsync(scratch["VARS.fd"], null, CancellationToken.None))
        {
            Assert.Contains(scratch["VARS.fd"], await SshLab.RunAsync("pgrep", "-a", "-f", "read -r go"));
        }

        await Task.Delay(500);
        Assert.DoesNotContain(scratch["VARS.fd"], await RunAllowingNoMatchAsync("pgrep", "-a", "-f", "read -r go"));
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Directories_are_created_with_their_mode_renamed_synced_and_looked_at(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var files = host.Files;

        await files.CreateDirectoryAsync(scratch["a/b/c"], Mode711, CancellationToken.None);
        await files.CreateDirectoryAsync(scratch["a/b/c"], UnixFileMode.UserRead, CancellationToken.None); // exists: unchanged
        var staging = await files.CreatePrivateDirectoryAsync(scratch["a"], ".virtbackup-restore-", CancellationToken.None);
        await File.WriteAllBytesAsync(Path.Combine(staging, "img"), new byte[12345]);
        var mtime = File.GetLastWriteTimeUtc(Path.Combine(staging, "img")).Ticks;
        await File.WriteAllTextAsync(scratch["a/old"], "old");
        await files.MoveAsync(Path.Combine(staging, "img"), scratch["a/old"], CancellationToken.None);
        await files.SyncAsync(scratch["a"], CancellationToken.None);

        Assert.Equal("root root 711 directory", await SshLab.DescribeAsync(scratch["a/b/c"]));
        Assert.Equal("root root 711 directory", await SshLab.DescribeAsync(scratch["a/b"]));
        Assert.Equal("root root 700 directory", await SshLab.DescribeAsync(staging));
        Assert.StartsWith(scratch["a/.virtbackup-restore-"], staging);
        Assert.Equal(new HostFileStatus(false, 12345, mtime), await files.StatAsync(scratch["a/old"], CancellationToken.None));
        Assert.True((await files.StatAsync(scratch["a/b"], CancellationToken.None))!.IsDirectory);
        Assert.Null(await files.StatAsync(scratch["a/none"], CancellationToken.None));
        Assert.Empty(Directory.EnumerateFileSystemEntries(staging));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task A_file_written_without_an_owner_keeps_the_writing_users(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);

        await host.Files.WriteFileAsync(scratch["NAME.chain.json"], "{}"u8.ToArray(), UnixFileMode.UserRead | UnixFileMode.UserWrite, null, null, CancellationToken.None);

        Assert.Equal("root root 600 regular file", await SshLab.DescribeAsync(scratch["NAME.chain.json"]));
    }

    /// <summary>stdout of a command that may exit 1 (pgrep: nothing matched).</summary>
    private static async Task<string> RunAllowingNoMatchAsync(string program, params string[] arguments)
    {
        var result = await CliWrap.Cli.Wrap(program).WithArguments(arguments).WithValidation(CliWrap.CommandResultValidation.None)
            .ExecuteBufferedAsync(CancellationToken.None);
        return result.ExitCode is 0 or 1 ? result.StandardOutput : throw new InvalidOperationException($"{program} failed: {result.StandardError}");
    }
}
