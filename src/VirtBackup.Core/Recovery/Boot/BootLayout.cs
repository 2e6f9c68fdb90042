using VirtBackup.Core.Restore;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// Where a booted domain's parts are. The run directory <c>/run/virtbackup/boot-NAME</c> (root, 0711: the qemu
/// user traverses it to the socket) holds the serve socket <c>nbd.sock</c>, the serve log <c>serve.log</c> and the
/// record <c>boot.json</c>; overlays are <c>DISK_DIR/NAME-TARGET.overlay.qcow2</c>; NVRAM and TPM state are where
/// restore puts them (<c>/var/lib/libvirt/qemu/nvram/NAME_VARS.fd</c>, <c>/var/lib/libvirt/swtpm/UUID</c>).
/// With live restore the overlays are the domain's images for good, named as restore names them
/// (<c>DISK_DIR/NAME-TARGET.qcow2</c>), and a file console logs to <c>DISK_DIR/NAME-serial.log</c> (the run directory goes).
/// </summary>
public sealed class BootLayout
{
    public const string DefaultRunRoot = "/run/virtbackup";

    public BootLayout(string name, string uuid, string diskDirectory, string runRoot = DefaultRunRoot, bool liveRestore = false)
    {
        if (RestoreName.Problem(name) is { } problem)
        {
            throw new ArgumentException($"'{name}' cannot name a booted domain's files: {problem}", nameof(name));
        }

        Name = name;
        Uuid = uuid;
        DiskDirectory = Path.GetFullPath(diskDirectory);
        RunDirectory = RunDirectoryFor(name, runRoot);
        LiveRestore = liveRestore;
    }

    public bool LiveRestore { get; }

    public string Name { get; }

    public string Uuid { get; }

    public string DiskDirectory { get; }

    public string RunDirectory { get; }

    public string SocketPath => Path.Combine(RunDirectory, "nbd.sock");

    public string ServeLogPath => Path.Combine(RunDirectory, "serve.log");

    public string RecordPath => RecordPathFor(RunDirectory);

    public string NvramPath => Path.Combine(RestoreOptions.NvramDirectory, $"{Name}_VARS.fd");

    public string SwtpmDomainDirectory => Path.Combine(RestoreOptions.SwtpmDirectory, Uuid);

    public string TpmStateDirectory(string? version) => Path.Combine(SwtpmDomainDirectory, version == "1.2" ? "tpm1.2" : "tpm2");

    public string OverlayPath(string target) => Path.Combine(DiskDirectory, LiveRestore ? $"{Name}-{target}.qcow2" : $"{Name}-{target}.overlay.qcow2");

    /// <summary>Where a serial console that logged to a file logs.</summary>
    public string SerialLogPath => LiveRestore ? Path.Combine(DiskDirectory, $"{Name}-serial.log") : Path.Combine(RunDirectory, "serial.log");

    public static string RunDirectoryFor(string name, string runRoot = DefaultRunRoot) => Path.Combine(runRoot, $"boot-{name}");

    public static string RecordPathFor(string runDirectory) => Path.Combine(runDirectory, "boot.json");
}
