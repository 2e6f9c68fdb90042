using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace VirtBackup.IntegrationTests.Remote;

[Collection(SshCollection.Name)]
public class SshHostFilesTests(ITestOutputHelper output)
{
    private const UnixFileMode Mode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Mode700 = Mode600 | UnixFileMode.UserExecute;

    [Fact(Timeout = 120_000)]
    public async Task Reading_a_tree_over_ssh_equals_reading_it_locally_modes_included()
    {
        using var scratch = SshLab.CreateScratch();
        var root = scratch["state"];
        var longName = new string('n', 150);
        var files = new (string Path, byte[] Content, int Mode)[]
        {
            ("top.bin", RandomNumberGenerator.GetBytes(1 << 20), 0b110_100_100),
            ("a/b/c/deep.dat", [.. Enumerable.Range(0, 256).Select(i => (byte)i)], 0b110_000_000),
            ("a/with space.txt", "spaces"u8.ToArray(), 0b110_100_000),
            ("a/it's \"quoted\".txt", "quotes"u8.ToArray(), 0b100_000_000),
            ("a/$(touch pwned) `x`; y & z", "shell"u8.ToArray(), 0b111_101_101),
            ("unicode-é-日本.txt", "ünïcödé"u8.ToArray(), 0b110_000_000),
            ("new\nline", "newline"u8.ToArray(), 0b110_100_100),
            ("empty", [], 0b110_000_000),
            ("b/setuid", [0x7F, 0x45, 0x4C, 0x46], 0b100_111_101_101),
            ($"{longName}/{longName}", "long"u8.ToArray(), 0b110_000_000),
        };
        foreach (var (path, content, mode) in files)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllBytesAsync(full, content);
            File.SetUnixFileMode(full, (UnixFileMode)mode);
        }

        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        await using var session = await SshLab.ConnectAsync();

        var local = await new LocalHostFiles().ReadTreeAsync(root, CancellationToken.None);
        var remote = await new SshHostFiles(session).ReadTreeAsync(root, CancellationToken.None);

        Assert.Equal(files.Select(f => f.Path).Order(StringComparer.Ordinal), remote.Select(f => f.RelativePath));
        Assert.Equal(Describe(local), Describe(remote));
        Assert.Equal(
            files.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => (f.Path, Convert.ToHexString(f.Content), (UnixFileMode)f.Mode)),
            Describe(remote));
        Assert.False(File.Exists("/root/pwned"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Reading_a_tree_refuses_a_symbolic_link_inside_it()
    {
        using var scratch = SshLab.CreateScratch();
        Directory.CreateDirectory(scratch["state/tpm2"]);
        await File.WriteAllTextAsync(scratch["state/tpm2/file"], "x");
        File.CreateSymbolicLink(scratch["state/tpm2/link"], "/etc/shadow");
        await using var session = await SshLab.ConnectAsync();

        var e = await Assert.ThrowsAsync<RemoteException>(
            () => new SshHostFiles(session).ReadTreeAsync(scratch["state"], CancellationToken.None));

        Assert.Equal(
            $"read the directory '{scratch["state"]}' on root@127.0.0.1:22: the remote command failed (exit code 1): " +
            $"not a regular file or directory: {scratch["state/tpm2/link"]}",
            e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task Reading_a_file_over_ssh_returns_its_exact_bytes()
    {
        using var scratch = SshLab.CreateScratch();
        var content = RandomNumberGenerator.GetBytes(3 << 20);
        await File.WriteAllBytesAsync(scratch["VARS.fd"], content);
        await File.WriteAllBytesAsync(scratch["empty.fd"], []);
        await using var session = await SshLab.ConnectAsync();
        var files = new SshHostFiles(session);

        Assert.Equal(content, await files.ReadFileAsync(scratch["VARS.fd"], CancellationToken.None));
        Assert.Empty(await files.ReadFileAsync(scratch["empty.fd"], CancellationToken.None));

        var missing = await Assert.ThrowsAsync<RemoteException>(() => files.ReadFileAsync(scratch["none.fd"], CancellationToken.None));
        Assert.Equal($"read the file '{scratch["none.fd"]}' on root@127.0.0.1:22: the remote command failed (exit code 3): no such file", missing.Message);
        var directory = await Assert.ThrowsAsync<RemoteException>(() => files.ReadFileAsync(scratch.Path, CancellationToken.None));
        Assert.Equal(1, directory.ExitCode);
        Assert.Equal("not a regular file", directory.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task Checking_readability_as_an_unprivileged_user_names_each_file_it_cannot_read()
    {
        using var scratch = SshLab.CreateScratch();
        var secret = scratch["VARS.fd"];
        var open = scratch["public.fd"];
        await File.WriteAllBytesAsync(secret, [1, 2, 3]);
        File.SetUnixFileMode(secret, Mode600);
        await File.WriteAllBytesAsync(open, [4]);
        File.SetUnixFileMode(open, (UnixFileMode)0b110_100_100);
        Directory.CreateDirectory(scratch["tree/sub"]);
        Directory.CreateDirectory(scratch["tree/locked"]);
        await File.WriteAllTextAsync(scratch["tree/ok"], "ok");
        await File.WriteAllTextAsync(scratch["tree/sub/secret"], "s");
        await File.WriteAllTextAsync(scratch["tree/locked/hidden"], "h");
        File.SetUnixFileMode(scratch["tree/sub/secret"], Mode600);
        File.SetUnixFileMode(scratch["tree/locked"], Mode700);
        const string advice = "Run virtbackup as root on the remote host.";

        await using var user = await SshLab.ConnectAsync(SshLab.User);
        var files = new SshHostFiles(user);

        var file = await Assert.ThrowsAsync<PreflightException>(
            () => files.CheckReadableAsync(secret, "NVRAM file", advice, CancellationToken.None));
        Assert.Equal(
            $"cannot read the NVRAM file '{secret}' on vbtssh@127.0.0.1:22: the remote user vbtssh cannot read '{secret}'. {advice}",
            file.Message);

        var tree = await Assert.ThrowsAsync<PreflightException>(
            () => files.CheckReadableAsync(scratch["tree"], "TPM state directory", advice, CancellationToken.None));
        Assert.Equal(
            $"cannot read the TPM state directory '{scratch["tree"]}' on vbtssh@127.0.0.1:22: the remote user vbtssh cannot read " +
            $"'{scratch["tree/locked"]}', '{scratch["tree/sub/secret"]}'. {advice}",
            tree.Message);

        var missing = await Assert.ThrowsAsync<PreflightException>(
            () => files.CheckReadableAsync(scratch["none"], "NVRAM file", advice, CancellationToken.None));
        Assert.Equal($"cannot read the NVRAM file '{scratch["none"]}' on vbtssh@127.0.0.1:22: it does not exist. {advice}", missing.Message);

        await files.CheckReadableAsync(open, "NVRAM file", advice, CancellationToken.None);

        // root reads all of it.
        await using var root = await SshLab.ConnectAsync();
        await new SshHostFiles(root).CheckReadableAsync(secret, "NVRAM file", advice, CancellationToken.None);
        await new SshHostFiles(root).CheckReadableAsync(scratch["tree"], "TPM state directory", advice, CancellationToken.None);
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task A_written_tree_lands_owned_by_tss_with_mode_0600_files_and_0700_directories(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var target = scratch["swtpm/6f1e0b0e-0000-4000-8000-000000000001"];
        var permall = RandomNumberGenerator.GetBytes(9000);
        HostFile[] files =
        [
            new("tpm2/tpm2-00.permall", permall, (UnixFileMode)0b111_111_111),
            new("tpm2/.lock", [], UnixFileMode.None),
            new("odd/it's a \"name\"/$(x) `y`", [1, 2, 3], UnixFileMode.None),
        ];

        await host.Files.WriteTreeAsync(target, files, Mode600, Mode700, "tss", "tss", CancellationToken.None);

        Assert.Equal(
            [
                ".|tss|tss|700|d",
                "odd|tss|tss|700|d",
                "odd/it's a \"name\"|tss|tss|700|d",
                "odd/it's a \"name\"/$(x) `y`|tss|tss|600|f",
                "tpm2|tss|tss|700|d",
                "tpm2/.lock|tss|tss|600|f",
                "tpm2/tpm2-00.permall|tss|tss|600|f",
            ],
            await SshLab.DescribeTreeAsync(target));
        Assert.Equal("root root 755 directory", await SshLab.DescribeAsync(scratch["swtpm"]));
        Assert.Equal([target], Directory.GetFileSystemEntries(scratch["swtpm"]));
        var read = await new LocalHostFiles().ReadTreeAsync(target, CancellationToken.None);
        Assert.Equal(
            [("odd/it's a \"name\"/$(x) `y`", "010203"), ("tpm2/.lock", ""), ("tpm2/tpm2-00.permall", Convert.ToHexString(permall))],
            read.Select(f => (f.RelativePath, Convert.ToHexString(f.Content))));
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task A_written_file_replaces_the_old_one_with_the_given_owner_and_mode(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var target = scratch["vm_VARS.fd"];
        await File.WriteAllTextAsync(target, "old, world-readable");
        File.SetUnixFileMode(target, (UnixFileMode)0b110_100_100);
        var content = RandomNumberGenerator.GetBytes(540_672);

        await host.Files.WriteFileAsync(target, content, Mode600, "tss", "tss", CancellationToken.None);

        Assert.Equal("tss tss 600 regular file", await SshLab.DescribeAsync(target));
        Assert.Equal(content, await File.ReadAllBytesAsync(target));
        Assert.Equal([target], Directory.GetFileSystemEntries(scratch.Path));

        await host.Files.WriteFileAsync(target, ReadOnlyMemory<byte>.Empty, (UnixFileMode)0b110_100_000, "root", "tss", CancellationToken.None);
        Assert.Equal("root tss 640 regular empty file", await SshLab.DescribeAsync(target));
    }

    [Theory(Timeout = 180_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Nothing_under_the_target_is_ever_readable_by_others_while_it_is_written(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var parent = scratch["swtpm"];
        Directory.CreateDirectory(parent);
        var nvramParent = scratch["nvram"];
        Directory.CreateDirectory(nvramParent);
        var seen = new ConcurrentDictionary<string, UnixFileMode>();
        var exposed = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var scans = 0;

        // Watch both parents as fast as possible while the writes run: every entry that appears, its mode.
        var watcher = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var top in new[] { parent, nvramParent })
                {
                    foreach (var entry in SafeEnumerate(top))
                    {
                        try
                        {
                            var mode = File.GetUnixFileMode(entry);
                            seen.TryAdd(entry, mode);
                            if ((mode & (UnixFileMode)0b000_111_111) != 0)
                            {
                                exposed.Add($"{entry} {Convert.ToString((int)mode, 8)}");
                            }
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        {
                            // Gone between listing and stat: renamed or removed.
                        }
                    }
                }

                scans++;
            }
        });

        HostFile[] files = [new("tpm2/tpm2-00.permall", RandomNumberGenerator.GetBytes(20_000), UnixFileMode.None), new("tpm2/x", [1], UnixFileMode.None)];
        for (var i = 0; i < 15; i++)
        {
            await host.Files.WriteTreeAsync(Path.Combine(parent, "vm"), files, Mode600, Mode700, "tss", "tss", CancellationToken.None);
            await host.Files.WriteFileAsync(Path.Combine(nvramParent, "vm_VARS.fd"), files[0].Content, Mode600, "tss", "tss", CancellationToken.None);
        }

        await stop.CancelAsync();
        await watcher;

        output.WriteLine($"{scans} scans saw {seen.Count} distinct paths, e.g.:");
        foreach (var path in seen.Keys.Where(p => p.Contains(".vb", StringComparison.Ordinal)).Take(6))
        {
            output.WriteLine($"  {path} {Convert.ToString((int)seen[path], 8)}");
        }

        Assert.Empty(exposed);
        Assert.Equal([Path.Combine(parent, "vm")], Directory.GetFileSystemEntries(parent));
        Assert.Equal([Path.Combine(nvramParent, "vm_VARS.fd")], Directory.GetFileSystemEntries(nvramParent));
        Assert.All(await SshLab.DescribeTreeAsync(parent), line => Assert.Matches(@"^[^|]*\|(root\|root\|755|tss\|tss\|(600|700))\|[df]$", line));
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Writing_a_tree_replaces_an_existing_tree_completely(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var target = scratch["vm"];

        await host.Files.WriteTreeAsync(target, [new("a/old", [1], 0), new("b", [2], 0)], Mode600, Mode700, "tss", "tss", CancellationToken.None);
        await host.Files.WriteTreeAsync(target, [new("c/new", [3], 0)], Mode600, Mode700, "root", "root", CancellationToken.None);

        Assert.Equal([".|root|root|700|d", "c|root|root|700|d", "c/new|root|root|600|f"], await SshLab.DescribeTreeAsync(target));
        Assert.Equal([target], Directory.GetFileSystemEntries(scratch.Path));
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Paths_and_names_from_the_stream_cannot_inject_shell_commands(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var marker = $"/tmp/vbt-pwned-{Guid.NewGuid():N}";
        var target = scratch[$"dir with 'quote' and $(touch {marker}) `touch {marker}`; touch {marker}"];
        HostFile[] files = [new($"$(touch {marker[1..]})", [1], 0), new("`id`'\"; touch x", [2], 0), new("-rf", [3], 0)];

        await host.Files.WriteTreeAsync(target, files, Mode600, Mode700, "tss", "tss", CancellationToken.None);
        await host.Files.WriteFileAsync(target + "/-n 'x'", new byte[] { 4 }, Mode600, "tss", "tss", CancellationToken.None);

        Assert.False(File.Exists(marker));
        Assert.Equal(
            [$"$(touch {marker[1..]})", "-n 'x'", "-rf", "`id`'\"; touch x"],
            (await new LocalHostFiles().ReadTreeAsync(target, CancellationToken.None)).Select(f => f.RelativePath).Order(StringComparer.Ordinal));
        Assert.True(await host.Files.ExistsAsync(target + "/-rf", CancellationToken.None));
        await host.Files.DeleteTreeAsync(target, CancellationToken.None);
        Assert.False(Directory.Exists(target));
        Assert.True(Directory.Exists(scratch.Path));
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Exists_sees_files_directories_and_dangling_links_and_delete_removes_links_not_their_targets(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var files = host.Files;
        Directory.CreateDirectory(scratch["kept/inner"]);
        await File.WriteAllTextAsync(scratch["kept/inner/file"], "x");
        File.CreateSymbolicLink(scratch["link"], scratch["kept"]);
        File.CreateSymbolicLink(scratch["dangling"], scratch["nowhere"]);
        await host.Files.WriteTreeAsync(scratch["tree"], [new("x/y", [1], 0)], Mode600, Mode700, "tss", "tss", CancellationToken.None);

        Assert.True(await files.ExistsAsync(scratch["kept/inner/file"], CancellationToken.None));
        Assert.True(await files.ExistsAsync(scratch["kept"], CancellationToken.None));
        Assert.True(await files.ExistsAsync(scratch["dangling"], CancellationToken.None));
        Assert.False(await files.ExistsAsync(scratch["nowhere"], CancellationToken.None));

        await files.DeleteTreeAsync(scratch["link"], CancellationToken.None);
        await files.DeleteTreeAsync(scratch["dangling"], CancellationToken.None);
        await files.DeleteTreeAsync(scratch["tree"], CancellationToken.None);
        await files.DeleteTreeAsync(scratch["nowhere"], CancellationToken.None);

        Assert.Equal([scratch["kept"]], Directory.GetFileSystemEntries(scratch.Path));
        Assert.True(File.Exists(scratch["kept/inner/file"]));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Bad_paths_names_and_owners_are_refused_before_anything_is_written(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        await using var host = await HostFilesUnderTest.OpenAsync(kind);
        var files = host.Files;
        var none = CancellationToken.None;

        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteTreeAsync("relative/dir", [], Mode600, Mode700, "tss", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteTreeAsync(scratch["a/../b"], [], Mode600, Mode700, "tss", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteTreeAsync(scratch["t"], [new("../escape", [1], 0)], Mode600, Mode700, "tss", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteTreeAsync(scratch["t"], [new("/abs", [1], 0)], Mode600, Mode700, "tss", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteTreeAsync(scratch["t"], [new("a", [1], 0), new("a/b", [1], 0)], Mode600, Mode700, "tss", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.WriteFileAsync(scratch["f"], new byte[] { 1 }, Mode600, "tss:root", "tss", none));
        await Assert.ThrowsAsync<ArgumentException>(() => files.DeleteTreeAsync("/", none));

        // An owner that does not exist fails with the host layer's one failure type, here and remotely, and leaves nothing behind.
        var unknown = await Assert.ThrowsAnyAsync<HostException>(
            () => files.WriteTreeAsync(scratch["t"], [new("x", [1], 0)], Mode600, Mode700, "vbt-nobody", "tss", none));
        output.WriteLine(unknown.Message);
        Assert.Contains("vbt-nobody", unknown.Message);
        Assert.Empty(Directory.GetFileSystemEntries(scratch.Path));
    }

    private static IEnumerable<(string, string, UnixFileMode)> Describe(IEnumerable<HostFile> files) =>
        files.Select(f => (f.RelativePath, Convert.ToHexString(f.Content), f.Mode));

    private static IEnumerable<string> SafeEnumerate(string directory)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(directory, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 }).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
