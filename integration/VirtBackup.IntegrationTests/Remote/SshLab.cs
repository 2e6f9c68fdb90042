using System.Text;

namespace VirtBackup.IntegrationTests.Remote;

/// <summary>The remote tests run one after the other: they share sshd (MaxStartups) and the machine's 2 cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SshCollection
{
    public const string Name = "ssh";
}

/// <summary>
/// The loopback "remote hypervisor": integration/lab/sshd.sh, run once per test process, gives an sshd
/// on 127.0.0.1:22 with a key for root and an unprivileged user <see cref="UnprivilegedUser"/>.
/// </summary>
internal static class SshLab
{
    public const string UnprivilegedUser = "vbtssh";
    public const string RootKey = "/root/.ssh/virtbackup_test_ed25519";
    public const string UserKey = "/root/.ssh/virtbackup_test_vbtssh_ed25519";

    private static readonly Lazy<Task> Started = new(StartAsync);

    /// <summary>root@127.0.0.1 with the lab key and nothing else (IdentitiesOnly: no agent, no other keys).</summary>
    public static SshTarget Root { get; } = new("127.0.0.1", "root", null, RootKey, Options: ["-o", "IdentitiesOnly=yes"]);

    /// <summary>libvirt on this machine reached as a remote host: over the loopback sshd, as root, with the test key.</summary>
    public static string RootLibvirtUri { get; } = $"qemu+ssh://root@127.0.0.1/system?keyfile={RootKey}";

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on now (for a backup job's NBD server), as text.</summary>
    public static string FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public static SshTarget User { get; } = new("127.0.0.1", UnprivilegedUser, null, UserKey, Options: ["-o", "IdentitiesOnly=yes"]);

    public static string RepositoryRoot => RepositoryCheckout.Root;

    public static Task EnsureAsync() => Started.Value;

    public static async Task<SshSession> ConnectAsync(SshTarget? target = null)
    {
        await EnsureAsync();
        return await SshSession.ConnectAsync(target ?? Root);
    }

    /// <summary>A new empty directory in /tmp that every user may enter (0755), removed on dispose.</summary>
    public static Scratch CreateScratch() => new();

    /// <summary>Runs a local command (the "remote" host is this machine) and returns its stdout; fails on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var result = await CliWrap.Cli.Wrap(program)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(Encoding.UTF8);
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', arguments)} failed ({result.ExitCode}): {result.StandardError}");
        return result.StandardOutput;
    }

    /// <summary>Every entry below <paramref name="root"/> (the root as "."), one "path|user|group|mode|type" line each, by path.</summary>
    public static async Task<string[]> DescribeTreeAsync(string root)
    {
        var output = await RunAsync("find", root, "-printf", "%P|%u|%g|%m|%y\\0");
        return [.. output.Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.StartsWith('|') ? "." + line : line)
            .OrderBy(line => line[..line.IndexOf('|')], StringComparer.Ordinal)];
    }

    /// <summary>"user group mode type" of one path (not following a symlink).</summary>
    public static async Task<string> DescribeAsync(string path) =>
        (await RunAsync("stat", "-c", "%U %G %a %F", path)).Trim();

    private static async Task StartAsync()
    {
        var script = Path.Combine(RepositoryRoot, "integration", "lab", "sshd.sh");
        var result = await CliWrap.Cli.Wrap("bash")
            .WithArguments([script, "--user", UnprivilegedUser])
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync();
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed ({result.ExitCode}): {result.StandardError}");
        }
    }

    public sealed class Scratch : IDisposable
    {
        public Scratch()
        {
            Path = Directory.CreateTempSubdirectory("vbt-ssh-").FullName;
            File.SetUnixFileMode(Path, (UnixFileMode)0b111_101_101);
        }

        public string Path { get; }

        public string this[string relative] => System.IO.Path.Combine(Path, relative);

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
    }
}
