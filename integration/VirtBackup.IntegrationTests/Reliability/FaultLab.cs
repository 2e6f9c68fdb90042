using System.Globalization;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// One lab VM (64 MiB, filled) for a column of the fault matrix, with its own state directory and a restore root
/// that receives every completed stream in order (a full, then incrementals), so each cell ends by proving that
/// the chain still restores byte-equal to the source disk.
/// </summary>
internal sealed class FaultLab : IAsyncDisposable
{
    public const int PauseSeconds = 120;
    private readonly string _work;
    private int _changes;

    private FaultLab(LabVm vm, string work, string? scratchDirectory)
    {
        Vm = vm;
        _work = work;
        ScratchDirectory = scratchDirectory ?? BackupOptions.DefaultScratchDirectory;
        StateDirectory = Path.Combine(work, "state");
        RestoreRoot = Path.Combine(work, "restore");
        Directory.CreateDirectory(RestoreRoot);
    }

    public LabVm Vm { get; }

    public string StateDirectory { get; }

    public string RestoreRoot { get; }

    public string ScratchDirectory { get; }

    public string DomainStateDirectory => Path.Combine(StateDirectory, Vm.Uuid);

    /// <summary>What <see cref="StartAtAsync"/> runs virtbackup through (see <see cref="CliProcess.Start"/>); null: directly.</summary>
    public IReadOnlyList<string>? Wrapper { get; set; }

    public static async Task<FaultLab> CreateAsync(string? scratchDirectory = null)
    {
        var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        return new FaultLab(vm, Directory.CreateTempSubdirectory("vbt-fault-").FullName, scratchDirectory);
    }

    public string[] BackupArguments(string level = "auto") =>
        ["backup", "--domain", Vm.Name, "--level", level, "--state-dir", StateDirectory, "--scratch-dir", ScratchDirectory];

    /// <summary>An auto backup that stops at <paramref name="phase"/> and waits there for a fault (or SIGCONT).</summary>
    public async Task<CliProcess> StartAtAsync(BackupPhase phase, bool readStdout = true, IReadOnlyList<string>? extra = null)
    {
        var process = CliProcess.Start(
            [.. BackupArguments(), .. extra ?? []],
            new Dictionary<string, string>
            {
                ["VIRTBACKUP_TEST_PAUSE_AT"] = BackupPhases.Name(phase),
                ["VIRTBACKUP_TEST_PAUSE_SECONDS"] = PauseSeconds.ToString(CultureInfo.InvariantCulture),
            },
            readStdout,
            wrapper: Wrapper);
        await process.WaitForStderrAsync($"reached {BackupPhases.Name(phase)}", TimeSpan.FromSeconds(60));
        return process;
    }

    /// <summary>A guest-like write that only this cell makes, so the next backup has something to carry.</summary>
    public async Task ChangeAsync()
    {
        var n = _changes++;
        await Vm.InjectWriteAsync("vda", $"{16 + n % 40}M", "64K", $"0x{0x40 + n % 0x40:x2}");
    }

    /// <summary>What libvirt and the state directory show now, in one line.</summary>
    public string Describe()
    {
        var (state, job, checkpoints) = Observe();
        var uncommitted = checkpoints.Where(ChainState.IsOurs).Except(Committed()).Count();
        return $"{state.ToString().ToLowerInvariant()}{(job ? ", job" : "")}{(uncommitted > 0 ? $", {uncommitted} uncommitted checkpoint" : "")}"
            + $"{(File.Exists(MarkerPath) ? ", paused marker" : "")}";
    }

    /// <summary>
    /// The guarantees after any fault: the VM runs, no job, no paused marker, every checkpoint of ours was carried by
    /// a completed stream, no job directory, no scratch file.
    /// </summary>
    public void AssertClean(DomainState expected = DomainState.Running)
    {
        var (state, job, checkpoints) = Observe();
        Assert.True(state == expected, $"{Vm.Name} is {state}, expected {expected}");
        Assert.False(job, $"{Vm.Name} still has a job");
        Assert.False(File.Exists(MarkerPath), $"the paused marker {MarkerPath} is still there");
        Assert.Equal(Committed(), checkpoints.Where(ChainState.IsOurs).ToArray());
        var jobDirectories = Directory.Exists(JobRuntimeDirectory.Root)
            ? Directory.GetDirectories(JobRuntimeDirectory.Root, $"{Vm.Uuid}-*")
            : [];
        Assert.True(jobDirectories.Length == 0, $"job directories left: {string.Join(", ", jobDirectories)}");
        var scratch = Directory.GetFiles(ScratchDirectory, $"virtbackup-{Vm.Uuid}-*");
        Assert.True(scratch.Length == 0, $"scratch files left: {string.Join(", ", scratch)}");
    }

    /// <summary>
    /// The next <c>auto</c> backup succeeds, restores (raw, into the restore root, on top of the earlier ones) and
    /// the restored disk equals the source disk byte for byte. Returns the backup's level and its stderr.
    /// </summary>
    public async Task<(BackupLevel Level, string Log)> NextBackupRestoresByteEqualAsync()
    {
        var backup = await VirtBackupCli.RunAsync(BackupArguments());
        Assert.True(backup.ExitCode == 0, $"the next backup exited {backup.ExitCode}: {backup.StandardError}");
        var level = await RestoresByteEqualAsync(backup.StandardOutput);
        AssertClean();
        return (level, backup.StandardError);
    }

    /// <summary>A complete stream of this VM restores (raw, on top of the earlier ones) byte-equal to the source disk now.</summary>
    public async Task<BackupLevel> RestoresByteEqualAsync(byte[] backup)
    {
        var stream = await ParsedStream.ReadAsync(backup);
        var restore = await VirtBackupCli.RunAsync(
            ["restore", "--target-root", RestoreRoot, "--format", "raw", "--force"], new MemoryStream(backup));
        Assert.True(restore.ExitCode == 0, $"restoring the backup exited {restore.ExitCode}: {restore.StandardError}");

        // The guest is firmware only: nothing but the injected writes changes the disk, so a copy now is the backup's instant.
        var source = Path.Combine(_work, "source.raw");
        await LabHost.RunAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", Vm.DiskPath("vda"), source]);
        var restored = Path.Combine(RestoreRoot, "var/lib/libvirt/images", $"{Vm.Name}-vda.img");
        await AssertSameBytesAsync(source, restored);
        return stream.Manifest.Level;
    }

    /// <summary>
    /// Lets <paramref name="held"/> go on from its phase: it must complete, its stream restore byte-equal to the source
    /// disk, and leave nothing behind.
    /// </summary>
    public async Task CompletesAndRestoresByteEqualAsync(CliProcess held)
    {
        held.Continue();
        var outcome = await held.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(outcome.ExitCode == 0, outcome.StandardError);
        await RestoresByteEqualAsync(outcome.StandardOutput);
        AssertClean();
    }

    public async ValueTask DisposeAsync()
    {
        await Vm.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    /// <summary>State, whether a job runs (never for a shut-off domain), and the checkpoints.</summary>
    public (DomainState State, bool Job, IReadOnlyList<string> Checkpoints) Observe()
    {
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(Vm.Name);
        return (domain.GetState().State, domain.IsActive() && domain.GetJobStats().IsActive, domain.ListCheckpoints());
    }

    private string MarkerPath => Path.Combine(DomainStateDirectory, "paused-by-virtbackup");

    private string[] Committed() =>
        new ChainStore(StateDirectory).Load(Vm.Uuid)?.Checkpoints.Select(c => c.Name).ToArray() ?? [];

    private static async Task AssertSameBytesAsync(string expected, string actual)
    {
        Assert.True(File.Exists(actual), $"{actual} was not restored");
        await using var a = File.OpenRead(expected);
        await using var b = File.OpenRead(actual);
        Assert.Equal(a.Length, b.Length);
        var x = new byte[1 << 20];
        var y = new byte[1 << 20];
        for (long offset = 0; offset < a.Length; offset += x.Length)
        {
            var n = await a.ReadAtLeastAsync(x, x.Length, throwOnEndOfStream: false);
            await b.ReadExactlyAsync(y.AsMemory(0, n));
            if (!x.AsSpan(0, n).SequenceEqual(y.AsSpan(0, n)))
            {
                var at = offset + x.AsSpan(0, n).CommonPrefixLength(y.AsSpan(0, n));
                Assert.Fail($"the restored disk differs from the source at byte {at}");
            }
        }
    }
}
