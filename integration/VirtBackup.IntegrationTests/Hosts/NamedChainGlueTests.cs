namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// The restic and borg glue with <c>--chain NAME</c> on real restic 0.14 and borg 1.2 repositories, with a stand-in for
/// virtbackup that writes its own arguments as the stream and appends what a restore reads to a file: each chain of one
/// domain has its own level decisions, stored names, restore list and pruning, and the unnamed chain keeps its names.
/// No VM (NamedChainBackupTests backs up and restores real chains).
/// </summary>
public sealed class NamedChainGlueTests : IDisposable
{
    private const string Domain = "vbt-named";
    private readonly TempDirectory _work = new();

    public NamedChainGlueTests()
    {
        Fake = _work.Sub("fake-virtbackup");
        Restored = _work.Sub("restored");
        File.WriteAllText(Fake, $$"""
            #!/usr/bin/env bash
            # A stand-in for virtbackup: a backup's stream is its arguments; a restore appends the stream it reads.
            case $1 in
              backup) printf 'stream of %s\n' "$*" ;;
              restore) cat >> '{{Restored}}' ;;
              *) exit 2 ;;
            esac
            """.Replace("\r", "", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(Fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string Fake { get; }

    private string Restored { get; }

    public void Dispose() => _work.Dispose();

    [Theory(Timeout = 120_000)]
    [InlineData("restic")]
    [InlineData("borg")]
    public async Task Each_chain_of_a_domain_is_backed_up_restored_and_pruned_on_its_own(string host)
    {
        var glue = await GlueAsync(host);
        string[] runs = ["", "offsite", "", "offsite", "offsite:full", "offsite"];
        foreach (var run in runs)
        {
            var (chain, level) = (run.Split(':')[0], run.Contains(':') ? run.Split(':')[1] : "auto");
            var result = await HostTools.RunAsync(glue.Backup, ["--domain", Domain, .. Chain(chain), "--level", level], glue.Environment);
            Assert.True(result.ExitCode == 0, result.ToString());
        }

        var unnamed = await ListAsync(glue, "");
        var offsite = await ListAsync(glue, "offsite");
        var prune = await HostTools.RunAsync(glue.Prune, ["--domain", Domain, "--chain", "offsite", "--keep-last", "1"], glue.Environment);
        var unnamedAfter = await ListAsync(glue, "");
        var restore = await HostTools.RunAsync(glue.Restore, ["--domain", Domain, "--chain", "offsite"], glue.Environment);
        var bad = await HostTools.RunAsync(glue.Backup, ["--domain", Domain, "--chain", "off site"], glue.Environment);

        Assert.Equal(["full", "inc"], unnamed.Select(l => l.Level));
        Assert.Equal(["full", "inc"], offsite.Select(l => l.Level));
        Assert.True(prune.ExitCode == 0, prune.ToString());
        var plan = prune.StandardOutput.TrimEnd('\n').Split('\n');
        Assert.Equal(4, plan.Length);
        Assert.Equal((true, true), (plan[0].EndsWith(" full forgotten", StringComparison.Ordinal), plan[1].EndsWith(" inc forgotten", StringComparison.Ordinal)));
        Assert.Equal((true, true), (plan[2].Contains(" full needed by ", StringComparison.Ordinal), plan[3].EndsWith(" inc kept by policy", StringComparison.Ordinal)));
        Assert.Equal(unnamed, unnamedAfter);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(
            [
                "stream of backup --domain vbt-named --level full --compression none --chain offsite",
                "stream of backup --domain vbt-named --level inc --compression none --chain offsite",
            ],
            File.ReadAllLines(Restored));
        Assert.True(bad.ExitCode == 2, bad.ToString());
        Assert.Contains("bad chain name 'off site' (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit)", bad.StandardError);
        Assert.All(unnamed, l => Assert.DoesNotContain("~", l.Name));
        Assert.All(offsite, l => Assert.StartsWith(host == "borg" ? $"{Domain}~offsite@" : "", l.Name));
        if (host == "restic")
        {
            var snapshots = await new ResticRepository(_work.Path, new HostVirtBackup(_work.Path)).SnapshotsAsync();
            Assert.Equal(["/vbt-named.tar", "/vbt-named.tar"], snapshots.Where(s => !s.Tags.Contains("chain=offsite")).Select(s => s.Paths.Single()));
            Assert.Equal(["/vbt-named~offsite.tar", "/vbt-named~offsite.tar"], snapshots.Where(s => s.Tags.Contains("chain=offsite")).Select(s => s.Paths.Single()));
        }
    }

    private static string[] Chain(string chain) => chain.Length == 0 ? [] : ["--chain", chain];

    /// <summary>The chain the restore wrapper would restore up to the newest backup of <paramref name="chain"/>: (name, level) per line.</summary>
    private static async Task<IReadOnlyList<(string Name, string Level)>> ListAsync(Glue glue, string chain)
    {
        var list = await HostTools.RunAsync(glue.Restore, ["--domain", Domain, .. Chain(chain), "--list"], glue.Environment);
        Assert.True(list.ExitCode == 0, list.ToString());
        return [.. list.StandardOutput.TrimEnd('\n').Split('\n').Select(line => (line.Split(' ')[0], line.Split(' ')[1]))];
    }

    private async Task<Glue> GlueAsync(string host)
    {
        var virtbackup = new HostVirtBackup(_work.Path);
        if (host == "restic")
        {
            var restic = new ResticRepository(_work.Path, virtbackup);
            await restic.InitAsync();
            return new Glue(ResticRepository.BackupScript, ResticRepository.RestoreScript, ResticRepository.ForgetScript, restic.Environment(Fake));
        }

        var borg = new BorgRepository(_work.Path, virtbackup);
        await borg.InitAsync();
        return new Glue(BorgRepository.BackupScript, BorgRepository.RestoreScript, BorgRepository.PruneScript, borg.Environment(Fake));
    }

    private sealed record Glue(string Backup, string Restore, string Prune, IReadOnlyDictionary<string, string?> Environment);
}
