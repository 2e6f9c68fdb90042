namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// Retention on real chains: 12 backups of one lab VM (two fulls, writes between) stored by the backup
/// wrapper with chosen times, pruned by the chain-aware wrapper with a keep-daily and then a keep-last
/// policy; after each, the remaining chains restore equal to the VM at each backup's instant (every remaining backup
/// with <c>VIRTBACKUP_LONG_TESTS=1</c>; CI restores each chain's full and newest backup and the end of the older chain).
/// </summary>
[Collection(LabCollection.Name)]
public sealed class ChainRetentionVmTests : IDisposable
{
    private const int Timeout = 900_000;

    /// <summary>The day of each backup: the newest of days 4, 5 and 6 are 3, 7 and 11; 4 and 5 end chain one.</summary>
    private static readonly int[] Days = [1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 6, 6];

    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    /// <summary>
    /// restic in CI, borg too with <c>VIRTBACKUP_LONG_TESTS=1</c> (each takes 60-140 s of CI's 30 minutes). CI still runs
    /// borg's chain-aware prune on the same policies in ChainRetentionTests (small stand-in streams) and restores real
    /// VM chains from borg in BorgHostTests; the pruning decisions are the same code for both hosts.
    /// </summary>
    public static TheoryData<string> Hosts => LongTests.Enabled ? new() { "restic", "borg" } : new() { "restic" };

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Hosts))]
    public async Task After_keep_daily_3_and_then_keep_last_2_the_remaining_chains_restore_equal_to_the_source_at_their_backups(string name)
    {
        var virtbackup = new HostVirtBackup(_work.Path);
        var host = ChainHosts.Create(name, _work.Path, virtbackup);
        await host.InitAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "32M", fill: true);
        var sources = new List<SourceState>();
        for (var k = 0; k < Days.Length; k++)
        {
            if (k > 0)
            {
                await vm.InjectWriteAsync("vda", $"{k}M", "256K", $"0x{0x40 + k:x2}");
            }

            var time = new DateTimeOffset(2026, 1, Days[k], 8 + k, 0, 0, TimeSpan.Zero);
            var (backup, source) = await SourceState.BackUpPausedAsync(
                vm, _work.Sub($"source-{k}"), () => host.BackupAsync(vm.Name, k == 6 ? "full" : "auto", time));
            Assert.True(backup.ExitCode == 0, backup.ToString());
            sources.Add(source);
        }

        var b = await host.ListAsync(vm.Name);
        Assert.Equal(["full", "inc", "inc", "inc", "inc", "inc", "full", "inc", "inc", "inc", "inc", "inc"], b.Select(x => x.Level));

        var daily = await host.PruneAsync(vm.Name, "--keep-daily", "3");

        Assert.True(daily.ExitCode == 0, daily.ToString());
        string[] expected =
        [
            .. b.Take(3).Select(x => x.PlanLine($"needed by {b[3].Label}")), b[3].PlanLine("kept by policy"),
            b[4].PlanLine("forgotten"), b[5].PlanLine("forgotten"),
            b[6].PlanLine($"needed by {b[11].Label}"), b[7].PlanLine("kept by policy"),
            .. b.Skip(8).Take(3).Select(x => x.PlanLine($"needed by {b[11].Label}")), b[11].PlanLine("kept by policy"),
        ];
        Assert.Equal(expected, daily.StandardOutput.TrimEnd('\n').Split('\n'));
        int[] remaining = [0, 1, 2, 3, 6, 7, 8, 9, 10, 11];
        Assert.Equal(remaining.Select(k => b[k]), await host.ListAsync(vm.Name));
        // CI restores the end of chain one, the full of chain two and its newest incremental after each prune (each needs
        // its whole chain); VIRTBACKUP_LONG_TESTS=1 restores every remaining backup.
        foreach (var k in remaining.Where(k => LongTests.Enabled || k is 3 or 6 or 11))
        {
            await AssertRestoresAsync(host, vm, b[k], sources[k], $"daily-{k}");
        }

        var last = await host.PruneAsync(vm.Name, "--keep-last", "2", host.FreeSpaceOption);

        Assert.True(last.ExitCode == 0, last.ToString());
        remaining = [6, 7, 8, 9, 10, 11];
        Assert.Equal(remaining.Select(k => b[k]), await host.ListAsync(vm.Name));
        foreach (var k in remaining.Where(k => LongTests.Enabled || k is 6 or 11))
        {
            await AssertRestoresAsync(host, vm, b[k], sources[k], $"last-{k}");
        }
    }

    private async Task AssertRestoresAsync(IChainHost host, LabVm vm, StoredBackup backup, SourceState source, string directory)
    {
        var root = _work.Sub(directory);
        var restore = await host.RestoreAsync(vm.Name, backup.Id, "--", "--target-root", root);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await source.AssertRestoredAsync(
            target => $"{root}/var/lib/libvirt/images/{vm.Name}-{target}.qcow2",
            $"{root}/var/lib/libvirt/qemu/nvram/{vm.Name}_VARS.fd",
            $"{root}/var/lib/libvirt/swtpm/{vm.Uuid}/tpm2");
        Directory.Delete(root, recursive: true);
    }
}
