using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>Everything a backup is asked to do; immutable.</summary>
public sealed record BackupOptions(
    string Domain,
    RequestedLevel Level,
    IReadOnlyList<string> ExcludeDisks,
    StreamWriterOptions Stream,
    FreezeMode Freeze,
    string StateDirectory,
    string ScratchDirectory)
{
    public const string DefaultScratchDirectory = Hosts.ScratchImages.DefaultDirectory;

    public const int DefaultNbdPort = 10809;

    /// <summary>The chain this backup belongs to (<see cref="ChainName"/>; validated by the caller); null: the unnamed chain.</summary>
    public string? Chain { get; init; }

    /// <summary>How the disk data travels from the host's QEMU to here (default: the job's unix socket).</summary>
    public NbdTransport NbdTransport { get; init; } = NbdTransport.Socket;

    /// <summary>With <see cref="NbdTransport.Tcp"/>: the address QEMU listens on (default: the host's address as this machine reaches it).</summary>
    public string? NbdTcpHost { get; init; }

    /// <summary>With <see cref="NbdTransport.Tcp"/>: the port QEMU listens on.</summary>
    public int NbdTcpPort { get; init; } = DefaultNbdPort;

    /// <summary>
    /// With <see cref="NbdTransport.Tcp"/>: TLS with these certificates (the job's server gets tls='yes'; libvirt uses the
    /// host's backup_tls_x509_cert_dir); null: plain TCP.
    /// </summary>
    public NbdTls? NbdTls { get; init; }

    /// <summary>Warnings the manifest carries besides those the backup finds itself (an active test hook).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>How a backup reads the disks from the backup job's NBD server.</summary>
public enum NbdTransport
{
    /// <summary>A private unix socket on the host (reached through the SSH connection when the host is remote).</summary>
    Socket,

    /// <summary>libvirt's NBD server on a TCP port of the host, reached directly: unencrypted and unauthenticated
    /// (trusted networks only) unless <see cref="BackupOptions.NbdTls"/> is set.</summary>
    Tcp,
}

/// <summary>How far the disk streaming is, for a progress line.</summary>
public readonly record struct BackupProgress(long BytesDone, long BytesTotal);

/// <summary>What a completed backup produced.</summary>
public sealed record BackupResult(Manifest Manifest, long DataBytes, TimeSpan Elapsed);
