using VirtBackup.IntegrationTests.Remote;

namespace VirtBackup.IntegrationTests.Consistency;

/// <summary>
/// The one-instant claim seen from inside a guest. The oracle guest (domain.sh create --oracle) moves a TPM NV counter,
/// a UEFI variable and vdb's first block in lockstep, as fast as it can, while backups run; every restored copy reads
/// the three at boot, and one instant means TPM &gt;= NVRAM &gt;= disk &gt;= TPM - 1. The naive procedure of the peer tools
/// (disks first, NVRAM and TPM state copied right after) breaks that, and the test shows by how much.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class OracleTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-oracle-").FullName;

    [Fact(Timeout = 1_500_000)]
    public async Task Every_backup_taken_while_the_guest_moves_tpm_nvram_and_disk_restores_to_a_copy_that_boots_with_them_at_one_instant()
    {
        await SshLab.EnsureAsync();
        var lab = new OracleLab(_work);
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", oracle: true);
        await OracleConsole.WaitForStepsAsync(vm.ConsoleLogPath, 20, OracleLab.BootTimeout);
        // Eleven backups with VIRTBACKUP_LONG_TESTS=1: full and inc, running, with and without the guest agent's freeze,
        // one over qemu+ssh. CI runs six of them that still cover every kind (each restored copy boots: about 30 s apiece).
        (string Level, string[] Options)[] plan = LongTests.Enabled
            ?
            [
                ("full", []), ("inc", []), ("inc", ["--freeze", "on"]), ("inc", ["--connect", SshLab.RootLibvirtUri]),
                ("inc", []), ("full", ["--freeze", "on"]), ("inc", []), ("inc", ["--freeze", "off"]),
                ("copy", []), ("inc", ["--freeze", "on"]), ("inc", []),
            ]
            :
            [
                ("full", []), ("inc", ["--freeze", "on"]), ("inc", ["--connect", SshLab.RootLibvirtUri]),
                ("full", ["--freeze", "on"]), ("copy", []), ("inc", ["--freeze", "off"]),
            ];
        var streams = new List<(string Level, string Path)>();
        foreach (var (level, options) in plan)
        {
            streams.Add((level, await lab.BackupAsync(vm, level, options)));
        }

        var rates = await OracleConsole.RatesAsync(vm.ConsoleLogPath);
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "suspend", vm.Name]); // its part is done: the copies get the CPU

        var results = await OracleLab.TwoAtATimeAsync(streams.Select((stream, i) => (Func<Task<(int Index, string Level, OracleBoot Boot)>>)(async () =>
        {
            // The chain up to stream i: from its full (a copy stands alone) through every inc after it.
            var first = stream.Level == "copy" ? i : streams.FindLastIndex(i, s => s.Level == "full");
            var name = $"{vm.Name}-{i}";
            await using var copy = new RestoredLabDomain(name);
            foreach (var j in Enumerable.Range(first, i - first + 1).Where(j => j == i || streams[j].Level != "copy"))
            {
                await OracleLab.RestoreAsync(streams[j].Path, "--as", name);
            }

            var boot = await OracleConsole.WaitForBootAsync(await OracleLab.StartCopyAsync(vm, name), OracleLab.BootTimeout);
            await OracleLab.DestroyAsync(name);
            return (i, stream.Level, boot);
        })));

        foreach (var (index, level, boot) in results)
        {
            output.WriteLine($"backup {index} ({level}): {boot}, spread {boot.Spread}");
        }

        output.WriteLine($"workload rate while backing up: median {Median(rates):F1} steps/s ({rates.Count} samples)");
        Assert.All(results, r => Assert.True(r.Boot.IsOneInstant, $"backup {r.Index} ({r.Level}) restored to {r.Boot}: not one instant"));
        // Each copy moved on: the backups were taken while the workload ran, not of a guest that stood still.
        Assert.Equal(results.Length, results.Select(r => r.Boot.Tpm).Distinct().Count());
    }

    [Fact(Timeout = 600_000)]
    public async Task Disks_backed_up_first_and_the_nvram_and_tpm_state_copied_right_after_restore_to_a_copy_whose_tpm_ran_ahead_of_its_disk()
    {
        var lab = new OracleLab(_work);
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", oracle: true);
        var started = await OracleConsole.WaitForStepsAsync(vm.ConsoleLogPath, 20, OracleLab.BootTimeout);
        // What a user of the peer tools does: the disks through a backup, then the state files by hand once it finished.
        var disks = await lab.BackupAsync(vm, "copy");
        // The copy follows as soon as the guest reported a few more steps, so the contrast cannot vanish on a slow machine.
        var (steps, _) = await OracleConsole.LatestAsync(vm.ConsoleLogPath);
        await OracleConsole.WaitForStepsAsync(vm.ConsoleLogPath, steps + 3, OracleLab.BootTimeout);
        var nvram = await File.ReadAllBytesAsync(vm.NvramPath);
        var tpm = Directory.EnumerateFiles(vm.TpmStateDirectory).ToDictionary(p => Path.GetFileName(p), File.ReadAllBytes);
        var name = $"{vm.Name}-n";
        await using var copy = new RestoredLabDomain(name);
        await OracleLab.RestoreAsync(disks, "--as", name);
        await File.WriteAllBytesAsync(copy.NvramPath, nvram);
        var tpmDirectory = await OracleLab.TpmStateDirectoryAsync(name);
        foreach (var (file, content) in tpm)
        {
            await File.WriteAllBytesAsync(Path.Combine(tpmDirectory, file), content);
        }

        var boot = await OracleConsole.WaitForBootAsync(await OracleLab.StartCopyAsync(vm, name), OracleLab.BootTimeout);
        await OracleLab.DestroyAsync(name);

        output.WriteLine($"naive copy restored to {boot}: the TPM ran {boot.Spread} steps ahead of the disk (workload at {started} before the backup began)");
        Assert.False(boot.IsOneInstant, $"the naive copy restored to {boot}, which looks like one instant: the oracle cannot tell");
        Assert.True(boot.Tpm > boot.Disk + 1, $"expected the TPM ahead of the disk: {boot}");
    }

    [Fact(Timeout = 600_000)]
    public async Task The_oracle_rejects_a_backup_whose_nvram_and_tpm_state_were_read_after_the_resume()
    {
        // The test of the test: the same capture with its order deliberately broken must fail the check above.
        var lab = new OracleLab(_work);
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", oracle: true);
        await OracleConsole.WaitForStepsAsync(vm.ConsoleLogPath, 20, OracleLab.BootTimeout);
        var broken = await lab.BackupAsync(vm, "full", new Dictionary<string, string?> { ["VIRTBACKUP_TEST_STATE_AFTER_RESUME"] = "3" });
        var name = $"{vm.Name}-b";
        await using var copy = new RestoredLabDomain(name);
        await OracleLab.RestoreAsync(broken, "--as", name);

        var boot = await OracleConsole.WaitForBootAsync(await OracleLab.StartCopyAsync(vm, name), OracleLab.BootTimeout);
        await OracleLab.DestroyAsync(name);

        output.WriteLine($"state read 3 s after the resume: restored to {boot}, the TPM {boot.Spread} steps ahead of the disk");
        Assert.False(boot.IsOneInstant, $"a backup whose state was read after the resume restored to {boot}: the oracle did not notice");
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static double Median(IReadOnlyList<double> values) =>
        values.Count == 0 ? double.NaN : values.Order().ElementAt(values.Count / 2);
}
