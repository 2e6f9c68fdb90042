using VirtBackup.Core.Hosts.Local;
using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Capture;

/// <summary>
/// A running domain with an NVRAM file and a TPM state directory (real files in a directory of this test's own), its
/// markers and chain state, and a backup run's skeleton as <c>BackupRun</c> has it: the recovery of a failed run
/// around the job around the capture, then streaming, ending the job and committing.
/// </summary>
internal sealed class CaptureScene : IDisposable
{
    public const string Checkpoint = "virtbackup-0123456789ab-0001";

    private readonly TestDirectory _directory = new();

    public CaptureScene()
    {
        Connection = new FakeConnection(Domain);
        var stateDirectory = Path.Combine(_directory.Path, "state");
        Store = new ChainStore(stateDirectory);
        Markers = new CaptureMarkers(Store.EnsureDirectory(Domain.Uuid));
        NvramPath = _directory.File("vm1_VARS.fd");
        File.WriteAllBytes(NvramPath, Nvram);
        var tpm = Directory.CreateDirectory(_directory.File("tpm2")).FullName;
        File.WriteAllBytes(Path.Combine(tpm, "tpm2-00.permall"), [1, 2, 3]);
        Server = JobServer.Unix(_directory.File("nbd.sock"));
        var disks = new[] { new BackupJobDisk("vda", _directory.File("vda.scratch"), Bitmaps: true) };
        Request = new CaptureRequest(
            Domain,
            new StateLocation(NvramPath, tpm, null, QemuConf.Defaults),
            BackupJobXml.Backup(Server, disks, [], null),
            BackupJobXml.Checkpoint(Checkpoint, disks, []),
            Checkpoint,
            FreezeMode.Auto);
    }

    public static byte[] Nvram { get; } = [0x5f, 0x46, 0x56, 0x48, 0, 0, 0, 7];

    public FakeDomain Domain { get; } = new();

    public FakeConnection Connection { get; }

    public ChainStore Store { get; }

    public CaptureMarkers Markers { get; }

    public JobServer Server { get; }

    public CaptureRequest Request { get; set; }

    public string NvramPath { get; }

    public LogLines Log { get; } = new();

    /// <summary>Called at each phase boundary of the capture.</summary>
    public PhaseHook? Phases { get; set; }

    /// <summary>What happens between the capture and the end of the job (reading the disks).</summary>
    public Func<Task> Streaming { get; set; } = () => Task.CompletedTask;

    public TimeSpan ReconnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public ConsistentCapture Capture => new(new LocalHypervisorHost().Files, Markers, Log.Logger) { Phases = Phases };

    /// <summary>One backup run, as <c>BackupRun</c> does it for a running domain; throws what the run throws.</summary>
    public async Task<CapturedState> BackupAsync(CancellationToken cancellationToken = default)
    {
        await using var recovery = new FailedRunRecovery(Connection, Domain.Uuid, Domain.Name, Markers, Store, Log.Logger)
        {
            ReconnectTimeout = ReconnectTimeout,
        };
        recovery.Track(Server, Request.CheckpointName);
        await using var job = new BackupJob(Domain, Request.CheckpointName, Log.Logger);
        var captured = await Capture.RunAsync(Request, job.Started, cancellationToken);
        await Streaming();
        await job.EndAsync(CancellationToken.None);
        job.Commit();
        recovery.Succeeded();
        return captured;
    }

    /// <summary>The VM as no backup ever touched it: running, thawed, no job, no checkpoint, no marker.</summary>
    public void AssertUntouched()
    {
        Assert.Equal(
            (DomainState.Running, false, (string?)null, 0, false, false),
            (Domain.State, Domain.Frozen, Domain.JobXml, Domain.CheckpointNames.Count, Markers.Paused.Exists, Markers.Frozen.Exists));
    }

    public void Dispose() => _directory.Dispose();
}
