namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// The program the host glue drives, and the domains it backs up. Today this is
/// integration/hosts/fake-virtbackup over directories; switching the host tests to the real
/// <c>virtbackup</c> and a lab VM means another implementation of this interface (executable =
/// <c>VirtBackupCli.ExecutablePath</c>, config with the lab's <c>connect =</c>, domains made by the lab,
/// <see cref="AssertRestored"/> comparing disk images) and one line in <see cref="StreamProducers"/>.
/// </summary>
public interface IStreamProducer
{
    /// <summary>The virtbackup executable (the VIRTBACKUP of the contrib scripts).</summary>
    string Executable { get; }

    /// <summary>
    /// Environment for the restic scripts: VIRTBACKUP and the config telling how to reach the
    /// domains; <paramref name="failing"/> makes every backup fail halfway through its stream.
    /// </summary>
    IReadOnlyDictionary<string, string?> Environment(bool failing = false);

    /// <summary>virtbackup's own global options (before the verb) that reach the domains: <c>--config FILE</c>.</summary>
    IReadOnlyList<string> GlobalOptions(bool failing = false);

    /// <summary>Options for the Bacula reader/writer scripts (no colon, no space in any of them).</summary>
    IReadOnlyList<string> ClientOptions(bool failing = false) => ["--virtbackup", Executable, .. GlobalOptions(failing)];

    /// <summary>Makes a domain with some content.</summary>
    void CreateDomain(string domain);

    /// <summary>Changes part of a domain's content, so that the next incremental has something in it.</summary>
    void ChangeDomain(string domain, int round);

    /// <summary>The exact bytes of the last complete stream the producer wrote for the domain.</summary>
    byte[] LastStream(string domain);

    /// <summary>Asserts the domain restored under <paramref name="targetRoot"/> equals its source now.</summary>
    void AssertRestored(string domain, string targetRoot);

    /// <summary>The levels of the streams restored under the target root, in the order applied.</summary>
    IReadOnlyList<string> AppliedLevels(string domain, string targetRoot);

    /// <summary>The exact bytes restore number <paramref name="index"/> (from 1) received.</summary>
    byte[] ReceivedStream(string domain, string targetRoot, int index);
}

public static class StreamProducers
{
    /// <summary>The producer the host tests use: the stand-in until the real verbs land.</summary>
    public static IStreamProducer Create(string workDirectory) => new FakeProducer(workDirectory);
}

/// <summary>integration/hosts/fake-virtbackup: a domain is a directory of files on a fake host.</summary>
public sealed class FakeProducer : IStreamProducer
{
    private readonly string _host;
    private readonly string _config;
    private readonly string _failingConfig;

    public FakeProducer(string workDirectory)
    {
        _host = Path.Combine(workDirectory, "fake-host");
        Directory.CreateDirectory(_host);
        _config = Path.Combine(workDirectory, "virtbackup.conf");
        _failingConfig = Path.Combine(workDirectory, "virtbackup-failing.conf");
        File.WriteAllText(_config, $"# the fake's hypervisor\nconnect = fake://{_host}\n");
        File.WriteAllText(_failingConfig, $"connect = fake://{_host}\nfake-fail = yes\n");
    }

    public string Executable { get; } = Path.Combine(HostTools.HostsDirectory, "fake-virtbackup");

    public IReadOnlyDictionary<string, string?> Environment(bool failing = false) => new Dictionary<string, string?>
    {
        ["VIRTBACKUP"] = Executable,
        ["VIRTBACKUP_CONFIG"] = failing ? _failingConfig : _config,
        ["VIRTBACKUP_CONNECT"] = null,
        ["FAKE_FAIL"] = null,
    };

    public IReadOnlyList<string> GlobalOptions(bool failing = false) => ["--config", failing ? _failingConfig : _config];

    public void CreateDomain(string domain)
    {
        var directory = Path.Combine(_host, domain);
        Directory.CreateDirectory(Path.Combine(directory, "tpm"));
        var random = new Random(domain.Sum(c => c));
        File.WriteAllBytes(Path.Combine(directory, "vda.img"), Bytes(random, 256 * 1024));
        File.WriteAllBytes(Path.Combine(directory, "VARS.fd"), Bytes(random, 64 * 1024));
        File.WriteAllBytes(Path.Combine(directory, "tpm", "tpm2-00.permall"), Bytes(random, 4 * 1024));
    }

    public void ChangeDomain(string domain, int round)
    {
        var random = new Random(round);
        using (var disk = File.OpenWrite(Path.Combine(_host, domain, "vda.img")))
        {
            disk.Position = 4096L * round;
            disk.Write(Bytes(random, 4096));
        }

        File.AppendAllText(Path.Combine(_host, domain, "VARS.fd"), $"round {round}\n");
    }

    public byte[] LastStream(string domain) =>
        File.ReadAllBytes(Path.Combine(_host, ".fake-state", domain, "last-stream.tar"));

    public void AssertRestored(string domain, string targetRoot)
    {
        var source = Path.Combine(_host, domain);
        var restored = Path.Combine(targetRoot, domain);
        Assert.True(Directory.Exists(restored), $"nothing restored at {restored}");
        Assert.Equal(RelativeFiles(source), RelativeFiles(restored));
        foreach (var file in RelativeFiles(source))
        {
            Assert.True(
                File.ReadAllBytes(Path.Combine(source, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(restored, file))),
                $"{file} of {domain} differs after the restore");
        }
    }

    public IReadOnlyList<string> AppliedLevels(string domain, string targetRoot)
    {
        var applied = Path.Combine(targetRoot, ".virtbackup-fake", domain, "applied");
        return File.Exists(applied) ? [.. File.ReadAllLines(applied).Select(line => line.Split(' ')[2])] : [];
    }

    public byte[] ReceivedStream(string domain, string targetRoot, int index) =>
        File.ReadAllBytes(Path.Combine(targetRoot, ".virtbackup-fake", domain, "streams", $"{index:D3}.tar"));

    private static byte[] Bytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static List<string> RelativeFiles(string directory) =>
        [.. Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(file => Path.GetRelativePath(directory, file))
            .Order(StringComparer.Ordinal)];
}
