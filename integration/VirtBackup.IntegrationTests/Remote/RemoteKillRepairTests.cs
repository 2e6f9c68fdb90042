namespace VirtBackup.IntegrationTests.Remote;

/// <summary>
/// SIGKILL of a backup over <c>qemu+ssh://</c> (no cleanup runs), and what the next run or <c>repair</c> must then
/// remove on the VM host: the job's runtime directory and its scratch images. The loopback "remote" host shares this
/// machine's files, so here virtbackup runs in a mount namespace of its own in which /run/virtbackup and the scratch
/// directory are empty tmpfs mounts: a local file call sees nothing there, and only what goes through the host layer
/// (over SSH) reaches the host's real directories, which the test then looks at.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class RemoteKillRepairTests(ITestOutputHelper output) : IDisposable
{
    private const string Nothing = "nothing";
    private const string JobLeftovers = "1 job directory, 1 scratch image";
    /// <summary>
    /// What CI kills remotely (VIRTBACKUP_LONG_TESTS=1: every phase): before anything exists on the host, with the job
    /// begun and the VM paused, and while streaming. Every phase after preflight leaves the same two things, and
    /// KillFaultTests kills a local backup in each of them.
    /// </summary>
    private static readonly BackupPhase[] CiPhases = [BackupPhase.Preflight, BackupPhase.BackupBegin, BackupPhase.Streaming];

    private readonly string _scratch = CreateScratchDirectory();

    [Fact(Timeout = 900_000)]
    public async Task After_SIGKILL_of_a_remote_backup_in_any_phase_the_next_backup_leaves_no_job_directory_or_scratch_image_on_the_host()
    {
        await using var lab = await CreateLabAsync();
        var matrix = new FaultMatrix("SIGKILL over qemu+ssh, then the next backup (host files only over SSH)", output);
        foreach (var phase in LongTests.Enabled ? BackupPhases.All : CiPhases)
        {
            await matrix.CellAsync(phase, async () =>
            {
                var left = await KillAtAsync(lab, phase);
                Assert.Equal(phase == BackupPhase.Preflight ? Nothing : JobLeftovers, left);
                var next = await RunAsync(lab, [.. lab.BackupArguments(), "--connect", SshLab.RootLibvirtUri]);
                Assert.True(next.ExitCode == 0, $"the next backup exited {next.ExitCode}: {next.StandardError}");
                Assert.Equal(Nothing, OnTheHost(lab));
                lab.AssertClean();
                return $"left on the host: {left} → the next backup removed it";
            });
        }

        matrix.Complete();
    }

    [Fact(Timeout = 300_000)]
    public async Task Repair_over_ssh_removes_the_job_directory_and_the_scratch_image_a_killed_remote_backup_left_on_the_host()
    {
        await using var lab = await CreateLabAsync();
        Assert.Equal(JobLeftovers, await KillAtAsync(lab, BackupPhase.StateRead));

        var repair = await RunAsync(lab, ["repair", "--connect", SshLab.RootLibvirtUri, "--domain", lab.Vm.Name, "--state-dir", lab.StateDirectory]);

        Assert.True(repair.ExitCode == 0, repair.StandardError);
        Assert.Contains($"aborted the backup job an interrupted virtbackup had left on '{lab.Vm.Name}'", repair.StandardError);
        Assert.Equal(Nothing, OnTheHost(lab));
        lab.AssertClean();
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    /// <summary>A scratch directory QEMU can use (0755), unique to this test.</summary>
    private static string CreateScratchDirectory()
    {
        var path = Directory.CreateTempSubdirectory("vbt-remote-scratch-").FullName;
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    private async Task<FaultLab> CreateLabAsync()
    {
        await SshLab.EnsureAsync();
        if (!Directory.Exists(JobRuntimeDirectory.Root))
        {
            Directory.CreateDirectory(JobRuntimeDirectory.Root, (UnixFileMode)0b111_001_001);
        }

        var lab = await FaultLab.CreateAsync(_scratch);
        // unshare without --fork, then exec: the process signalled and waited for is virtbackup itself.
        lab.Wrapper =
        [
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs -o mode=0711 vbt-local-view \"$1\" && mount -t tmpfs -o mode=0755 vbt-local-view \"$2\" && shift 2 && exec \"$@\"",
            "sh", JobRuntimeDirectory.Root, _scratch,
        ];
        return lab;
    }

    /// <summary>A remote backup stopped at <paramref name="phase"/> and killed there; returns what it left on the host.</summary>
    private static async Task<string> KillAtAsync(FaultLab lab, BackupPhase phase)
    {
        await lab.ChangeAsync();
        using var backup = await lab.StartAtAsync(phase, extra: ["--connect", SshLab.RootLibvirtUri]);
        backup.Signal(Signals.Kill);
        Assert.Equal(137, (await backup.WaitForExitAsync(TimeSpan.FromSeconds(30))).ExitCode);
        return OnTheHost(lab);
    }

    private static async Task<CliOutcome> RunAsync(FaultLab lab, IReadOnlyList<string> args)
    {
        using var process = CliProcess.Start(args, wrapper: lab.Wrapper);
        return await process.WaitForExitAsync(TimeSpan.FromSeconds(180));
    }

    /// <summary>The job directories and scratch images of the lab's VM in the host's real directories.</summary>
    private static string OnTheHost(FaultLab lab)
    {
        var directories = Directory.Exists(JobRuntimeDirectory.Root) ? Directory.GetDirectories(JobRuntimeDirectory.Root, $"{lab.Vm.Uuid}-*").Length : 0;
        var images = Directory.GetFiles(lab.ScratchDirectory, $"virtbackup-{lab.Vm.Uuid}-*").Length;
        return directories + images == 0 ? Nothing : $"{directories} job directory, {images} scratch image";
    }
}
