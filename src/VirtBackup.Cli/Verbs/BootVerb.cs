using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Recovery.Boot;
using VirtBackup.Core.Restore;

namespace VirtBackup.CliApp.Verbs;

internal sealed class BootVerb : IVerb
{
    public string Name => "boot";

    public string Summary => "start a domain from a chain of stream files without restoring it (overlays on a background serve, NVRAM and TPM state under a new UUID); "
        + "--live-restore then pulls its data into local images while it runs; --stop NAME removes a boot again";

    public string? Operands => "STREAM...";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("as", "the new domain's name (it gets a new UUID and new MAC addresses)", "NAME"),
        new("network", "none (default): no network interfaces, so the copy cannot meet the original on the LAN; keep: keep them, with new MACs", "MODE", ["none", "keep"]),
        new("disk-dir", $"where the qcow2 overlays go (default {RestoreOptions.DefaultDiskDirectory}): NAME-TARGET.overlay.qcow2; with --live-restore the images NAME-TARGET.qcow2", "DIR"),
        new("live-restore", "after the boot, pull the data into local images in --disk-dir while the guest runs (progress on stderr); when done the domain no longer needs the backup: "
            + "the server exits and the definition names the images, as restore + start would give. Needs --disk-dir"),
        new("stop", "destroy and undefine the booted domain NAME, remove its overlays, NVRAM and TPM state, stop its server", "NAME"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        if (options.Flag("live-restore") && options.Value("disk-dir") is null)
        {
            throw new UsageException($"--live-restore needs --disk-dir DIR: the directory where the domain's images stay for good (e.g. --disk-dir {RestoreOptions.DefaultDiskDirectory})");
        }

        var uri = LocalUri(options, context);
        using var libvirt = LibvirtConnection.Open(uri);
        if (options.Value("stop") is { } stop)
        {
            if (options.Operands.Count > 0 || options.Value("as") is not null || options.Flag("live-restore"))
            {
                throw new UsageException("--stop NAME takes no streams, no --as and no --live-restore");
            }

            if (!await new BootCleanup(libvirt, context.Log).StopAsync(stop))
            {
                throw new BootRefusedException($"no boot named '{stop}' is recorded (no {BootLayout.RecordPathFor(BootLayout.RunDirectoryFor(stop))})");
            }

            return ExitCodes.Success;
        }

        if (options.Operands.Count == 0)
        {
            throw new UsageException("give the chain's stream files: the full first, then its incrementals in order");
        }

        var name = options.Value("as") ?? throw new UsageException("give the booted domain's name with --as NAME");
        var liveRestore = options.Flag("live-restore");

        var request = new BootRequest(name, options.Operands, options.Value("disk-dir") ?? RestoreOptions.DefaultDiskDirectory,
            KeepNetwork: options.Value("network") == "keep", LiveRestore: liveRestore);
        var run = new BootRun(libvirt, QemuConf.Load(), context.Log, ServeCommand());
        var booted = await run.StartAsync(request, cancellationToken);
        if (!liveRestore)
        {
            booted.Record.Phase = BootPhase.Booted;
            booted.Record.Save();
            return ExitCodes.Success;
        }

        await new LiveRestoreRun(libvirt, context.Log).RunAsync(booted, new BootIsolation(request.KeepNetwork), cancellationToken);
        return ExitCodes.Success;
    }

    /// <summary>Boot writes this host's files: it works with the local system libvirt only.</summary>
    public static string LocalUri(ParsedOptions options, VerbContext context)
    {
        var uri = Settings.ConnectUri(options, context);
        if (uri != LibvirtConnection.SystemUri)
        {
            throw new UsageException($"boot and verify --boot run on the hypervisor host itself ({LibvirtConnection.SystemUri}), not '{uri}'");
        }

        return uri;
    }

    /// <summary>How to run this virtbackup again (for the background serve): the executable, or dotnet and the assembly.</summary>
    public static IReadOnlyList<string> ServeCommand()
    {
        var executable = Environment.ProcessPath ?? throw new InvalidOperationException("the executable's path is unknown");
        return Path.GetFileNameWithoutExtension(executable) == "dotnet"
            ? [executable, Path.GetFullPath(Environment.GetCommandLineArgs()[0])]
            : [executable];
    }
}
