using CliWrap.Buffered;
using VirtBackup.IntegrationTests.Backup;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.Testing;
using Xunit.Abstractions;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// <c>virtbackup consolidate</c> on a lab VM's real chain (docs/RESTORE.md, Synthetic full): full + 3 incrementals
/// with incompressible writes between give a synthetic full that restores equal to the chain and to the VM at the
/// third incremental; the fourth incremental, taken after, applies on top of it. Stored after the chain in restic and
/// in borg, the synthetic full adds little: the incrementals' members it copies byte for byte deduplicate. Stored in
/// restic as docs/HOSTS.md says, the restic wrapper restores the newest state from it and the fourth incremental.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class ConsolidateLabTests(ITestOutputHelper output) : IDisposable
{
    private const long MiB = 1024 * 1024;

    /// <summary>Level tags of full, inc1, inc2, inc3 and the synthetic full as stored in restic.</summary>
    private static readonly string[] Levels = ["full", "inc", "inc", "inc", "full"];

    /// <summary>Their restic times: an hour apart, the synthetic full one second after inc3, the stream it ends with.</summary>
    private static readonly DateTimeOffset[] Times =
    [
        .. Enumerable.Range(0, 4).Select(k => new DateTimeOffset(2026, 1, 5, 6 + k, 0, 0, TimeSpan.Zero)),
        new DateTimeOffset(2026, 1, 5, 9, 0, 1, TimeSpan.Zero),
    ];

    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = 420_000)]
    public async Task A_synthetic_full_of_full_and_3_incrementals_restores_like_the_chain_takes_the_next_incremental_and_adds_little_to_restic_and_borg()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var backups = new BackupFixture(vm);
        var full = await backups.BackupAsync("full");
        await vm.InjectWriteAsync("vda", "16M", "1M", "random");
        var inc1 = await backups.BackupAsync("inc");
        await vm.InjectWriteAsync("vda", "9M", "1M", "random"); // inside the full's 8-12 MiB run: that member is encoded anew
        var inc2 = await backups.BackupAsync("inc");
        await vm.InjectWriteAsync("vda", "32M", "16M", "random"); // the "16 MiB change"
        var (inc3, atInc3) = await SourceState.BackUpPausedAsync(vm, _work.Sub("at-inc3"), () => backups.BackupAsync("inc"));
        await vm.InjectWriteAsync("vda", "56M", "1M", "random");
        var (inc4, atInc4) = await SourceState.BackUpPausedAsync(vm, _work.Sub("at-inc4"), () => backups.BackupAsync("inc"));
        var chain = new[] { full, inc1, inc2, inc3 }.Select((s, i) => Save(s.Bytes, $"{i}.tar")).ToArray();

        var consolidate = await VirtBackupCli.RunAsync(["consolidate", .. chain]);

        Assert.True(consolidate.ExitCode == 0, consolidate.StandardError);
        var synthetic = await ParsedStream.ReadAsync(consolidate.StandardOutput);
        Assert.Equal(
            (Core.Stream.BackupLevel.Full, inc3.Manifest.Checkpoint, inc3.Manifest.ChainId, (string?)null),
            (synthetic.Manifest.Level, synthetic.Manifest.Checkpoint, synthetic.Manifest.ChainId, synthetic.Manifest.ParentCheckpoint));
        Assert.Contains(synthetic.Manifest.Warnings, w => w.StartsWith("synthetic full: consolidated from 4 stream(s)", StringComparison.Ordinal));
        var verify = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(synthetic.Bytes));
        Assert.True(verify.ExitCode == 0, verify.StandardError);

        var chainRoot = _work.Sub("chain");
        foreach (var stream in new[] { full, inc1, inc2, inc3 })
        {
            await RestoreAsync(stream.Bytes, chainRoot);
        }

        await atInc3.AssertRestoredBelowAsync(chainRoot, vm);
        var syntheticRoot = _work.Sub("synthetic");
        await RestoreAsync(synthetic.Bytes, syntheticRoot);
        await atInc3.AssertRestoredBelowAsync(syntheticRoot, vm);
        await RestoreAsync(inc4.Bytes, syntheticRoot);
        await atInc4.AssertRestoredBelowAsync(syntheticRoot, vm);

        var virtbackup = new HostVirtBackup(_work.Path);
        var restic = new ResticRepository(_work.Path, virtbackup);
        var borg = new BorgRepository(_work.Path, virtbackup);
        await restic.InitAsync();
        await borg.InitAsync();
        output.WriteLine($"stream bytes: full {full.Bytes.Length}, incs {inc1.Bytes.Length} {inc2.Bytes.Length} {inc3.Bytes.Length}, synthetic full {synthetic.Bytes.Length}");
        foreach (var (name, location, store) in new (string, string, Func<string, int, Task>)[]
        {
            ("restic", restic.Location, (file, k) => StoreInResticAsync(restic, vm.Name, file, Levels[k], Times[k])),
            ("borg", borg.Location, (file, k) => HostTools.RunCheckedAsync("borg", ["create", $"::s{k}", file], borg.Environment())),
        })
        {
            var added = new List<long>();
            foreach (var (stream, k) in new[] { full, inc1, inc2, inc3, synthetic }.Select((s, k) => (s, k)))
            {
                var before = SizeOf(location);
                await store(Save(stream.Bytes, $"{name}-store/{vm.Name}.tar"), k);
                added.Add(SizeOf(location) - before);
            }

            output.WriteLine($"{name}: the full added {added[0]} bytes, the incs {added[1]} {added[2]} {added[3]}, the synthetic full {added[4]}");
            // The synthetic full's new bytes are the re-encoded 8-12 MiB member (1 MiB random in it) and the chunks where
            // copied members meet new neighbours (borg's default chunks are about 2 MiB, restic's 1 MiB); the last
            // incremental added its 16 MiB of random data.
            Assert.True(added[4] < 1.5 * added[3] + MiB, $"{name}: the synthetic full added {added[4]} bytes, the last incremental {added[3]}");
        }

        // Stored as HOSTS.md says (a full one second after its last stream), the restic wrapper restores the newest
        // state as the synthetic full and the incremental taken after it.
        await StoreInResticAsync(restic, vm.Name, Save(inc4.Bytes, "inc4.tar"), "inc", Times[3].AddHours(1));
        var resticRoot = _work.Sub("restic-newest");
        var restore = await restic.RestoreAsync(vm.Name, "--", "--target-root", resticRoot);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains($"restored '{vm.Name}' from 2 snapshot(s)", restore.StandardError);
        await atInc4.AssertRestoredBelowAsync(resticRoot, vm);
    }

    /// <summary>A stream stored as the restic backup wrapper tags it, with restic's --time.</summary>
    private static async Task StoreInResticAsync(ResticRepository restic, string domain, string file, string level, DateTimeOffset time)
    {
        var result = await CliWrap.Cli.Wrap("restic")
            .WithArguments(["backup", "--stdin", "--stdin-filename", $"{domain}.tar", "--tag", "virtbackup", "--tag", $"domain={domain}",
                "--tag", $"level={level}", "--time", ChainHosts.Format(time, " ")])
            .WithEnvironmentVariables(restic.Environment())
            .WithStandardInputPipe(CliWrap.PipeSource.FromFile(file))
            .WithValidation(CliWrap.CommandResultValidation.None)
            .ExecuteBufferedAsync();
        Assert.True(result.ExitCode == 0, $"restic backup of {file}: {result.StandardError}");
    }

    private static async Task RestoreAsync(byte[] stream, string root)
    {
        var restore = await VirtBackupCli.RunAsync(["restore", "--target-root", root], new MemoryStream(stream));
        Assert.True(restore.ExitCode == 0, $"restore exited {restore.ExitCode}: {restore.StandardError}");
    }

    private string Save(byte[] bytes, string name)
    {
        var path = _work.Sub(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>What a repository holds on disk: the sum of its files' sizes.</summary>
    private static long SizeOf(string directory) =>
        Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}
