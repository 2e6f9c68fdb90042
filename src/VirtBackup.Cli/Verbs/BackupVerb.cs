using VirtBackup.Core.Backup;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

internal sealed class BackupVerb : IVerb
{
    public string Name => "backup";

    public string Summary => "back up a domain (disks, NVRAM, TPM state at one instant) as one tar stream on stdout";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("domain", "the domain to back up (required)", "NAME"),
        new("level", "copy: no checkpoint; full: new chain; inc: changes since the last backup; diff: changes since the chain's full (the next inc follows it); auto (default): inc when the chain allows, else full (never diff)", "LEVEL", ["copy", "full", "inc", "diff", "auto"]),
        new("chain", $"the chain to continue or start ({ChainName.Rule}): a domain's chains are independent, each with its own checkpoints, so an inc of one holds every change since its own last backup whatever the others took (default: the config file's chain, else the unnamed chain)", "NAME"),
        new("exclude-disk", "disks (targets) to leave out", "vdb[,..]"),
        new("compression", "zstd (default): each member one zstd frame; none: raw members, for deduplicating hosts (restic)", "MODE", ["zstd", "none"]),
        new("zstd-level", $"zstd level 1-19 (default {StreamWriterOptions.DefaultZstdLevel})", "N"),
        new("freeze", "auto (default): fsfreeze through the guest agent when one answers, else (no agent, or its freeze fails) go on crash-consistent with a warning; on: require a freeze, refuse before pausing otherwise; off", "MODE", ["auto", "on", "off"]),
        new("state-dir", $"where the checkpoint chain is remembered (default: the config file's state-dir, else {ChainStore.DefaultDirectory})", "DIR"),
        new("scratch-dir", $"where QEMU keeps copy-before-write data during the backup (default {BackupOptions.DefaultScratchDirectory})", "DIR"),
        new("nbd-transport", "how disk data travels: ssh (default): the job's private unix socket, forwarded over the SSH connection for a qemu+ssh:// host; tcp: libvirt's NBD server on a TCP port of the host (not encrypted unless --nbd-tls-dir: trusted networks only)", "MODE", ["ssh", "tcp"]),
        new("nbd-host", "with --nbd-transport tcp: the address QEMU listens on and virtbackup connects to (default: the SSH host's address, localhost for a local URI)", "ADDRESS"),
        new("nbd-port", $"with --nbd-transport tcp: the TCP port (default {BackupOptions.DefaultNbdPort})", "PORT"),
        new("nbd-tls-dir", $"with --nbd-transport tcp: encrypt with TLS (the host needs backup_tls_x509_cert_dir in qemu.conf); DIR holds {NbdTls.CaCertificateFileName}, {NbdTls.ClientCertificateFileName} and {NbdTls.ClientKeyFileName}; the server's certificate must name the NBD host (default: the config file's {NbdTlsDirKey})", "DIR"),
    ];

    /// <summary>The config file key that gives --nbd-tls-dir for every TCP backup.</summary>
    public const string NbdTlsDirKey = "nbd-tls-dir";

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var domain = options.Value("domain") ?? throw new UsageException("--domain NAME is required");
        if (context.OutputIsTerminal)
        {
            throw new BackupRefusedException("refusing to write a backup stream to a terminal: redirect stdout to a file or pipe it to your backup host");
        }

        if (context.OutputIsClosed)
        {
            throw new BackupRefusedException("stdout was closed when virtbackup started ('>&-'): redirect stdout to a file or pipe it to your backup host");
        }

        var compression = options.Value("compression") == "none" ? Compression.None : Compression.Zstd;
        var stream = compression == Compression.None
            ? StreamWriterOptions.Uncompressed()
            : StreamWriterOptions.Zstd(options.IntValue("zstd-level", StreamWriterOptions.DefaultZstdLevel, 1, 19));
        var backupOptions = new BackupOptions(
            domain,
            Enum.Parse<RequestedLevel>(options.Value("level") ?? "auto", ignoreCase: true),
            options.ListValue("exclude-disk"),
            stream,
            Enum.Parse<FreezeMode>(options.Value("freeze") ?? "auto", ignoreCase: true),
            Settings.StateDirectory(options, context),
            options.Value("scratch-dir") ?? BackupOptions.DefaultScratchDirectory)
        {
            NbdTransport = options.Value("nbd-transport") == "tcp" ? NbdTransport.Tcp : NbdTransport.Socket,
            NbdTcpHost = options.Value("nbd-host"),
            NbdTcpPort = options.IntValue("nbd-port", BackupOptions.DefaultNbdPort, 1, 65535),
            Chain = Settings.Chain(options, context),
        };
        if (backupOptions.NbdTransport != NbdTransport.Tcp && (options.Value("nbd-host") ?? options.Value("nbd-port")) is not null)
        {
            throw new UsageException("--nbd-host and --nbd-port go with --nbd-transport tcp");
        }

        if (backupOptions.NbdTransport != NbdTransport.Tcp && options.Value("nbd-tls-dir") is not null)
        {
            throw new UsageException("--nbd-tls-dir goes with --nbd-transport tcp (the ssh transport is encrypted by SSH already)");
        }

        if (backupOptions.NbdTransport == NbdTransport.Tcp
            && (options.Value("nbd-tls-dir") ?? Settings.Config(options, context)[NbdTlsDirKey]) is { } tlsDir)
        {
            // Checked now, long before the VM is paused: the CA is required, the client certificate comes with its key.
            backupOptions = backupOptions with { NbdTls = NbdTls.FromDirectory(tlsDir) };
        }

        var testHooks = TestHooks.Active(context.Environment);
        foreach (var hook in testHooks)
        {
            context.Log.Warning("{TestHook}", hook);
        }

        backupOptions = backupOptions with { Warnings = testHooks };

        // SSH first: connecting and authenticating happen here, long before the VM is paused.
        var uri = Settings.ConnectUri(options, context);
        await using var host = await HostConnection.ConnectAsync(uri, null, context.Log, cancellationToken);
        using var libvirt = LibvirtConnection.Open(uri);
        context.Log.Debug("phase: libvirt connected");
        using var progress = new ProgressReporter(context.Log, context.ErrorIsTerminal);
        using var testPause = TestPauseHook.FromEnvironment(context.Environment);
        var run = new BackupRun(libvirt, host, context.Log)
        {
            Progress = progress,
            Phases = testPause?.Hook,
            BrokenOrderStateReadDelay = TestHooks.StateAfterResume(context.Environment),
        };
        await run.RunAsync(backupOptions, context.StandardOutput, cancellationToken);
        return ExitCodes.Success;
    }
}
