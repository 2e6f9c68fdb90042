using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Recovery.Boot;

namespace VirtBackup.CliApp.Verbs;

internal sealed class RepairVerb : IVerb
{
    public string Name => "repair";

    public string Summary =>
        "after a killed virtbackup: resume a VM it paused, thaw a guest it froze, abort its job, remove its uncommitted checkpoint, its job directory and scratch images; "
        + "--boots: remove stale boots (killed boot or verify --boot, or a boot whose server is gone)";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("domain", "the domain to repair (required unless --boots); a stale boot of that name is removed", "NAME"),
        new("boots", "remove every stale boot on this host: its domain, overlays, NVRAM and TPM state, server and run directory (RECOVERY.md)"),
        new("state-dir", $"where the checkpoint chain is remembered (default: the config file's state-dir, else {ChainStore.DefaultDirectory})", "DIR"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var boots = options.Flag("boots");
        var name = options.Value("domain");
        if (name is null && !boots)
        {
            throw new UsageException("--domain NAME is required (or --boots: remove stale boots)");
        }

        // Boots are recorded on the hypervisor host itself, by root (boot refuses anything else).
        var bootHost = Settings.ConnectUri(options, context) == LibvirtConnection.SystemUri && StaleBoots.RunsAsRoot;
        if (boots && !bootHost)
        {
            throw new UsageException($"repair --boots runs as root on the hypervisor host itself ({LibvirtConnection.SystemUri}), where boot records boots");
        }

        using var libvirt = LibvirtConnection.Open(Settings.ConnectUri(options, context));
        var removedBoots = boots ? await RemoveStaleBootsAsync(libvirt, context, null)
            : bootHost && File.Exists(BootLayout.RecordPathFor(BootLayout.RunDirectoryFor(name!))) ? await RemoveStaleBootsAsync(libvirt, context, name)
            : [];
        if (name is null || removedBoots.Contains(name))
        {
            return ExitCodes.Success;
        }

        using var domain = libvirt.LookupByName(name);
        var store = new ChainStore(Settings.StateDirectory(options, context));
        var directory = store.EnsureDirectory(domain.Uuid);
        using var domainLock = DomainLock.Acquire(directory, domain.Name);
        await using var host = await HostConnection.ConnectAsync(Settings.ConnectUri(options, context), null, context.Log, cancellationToken);
        var repaired = await new DomainRepair(domain, new CaptureMarkers(directory), new HostLeftovers(directory), host, context.Log)
            .RunAsync(cancellationToken);
        var checkpoints = CheckpointBitmaps.For(domain, host.Images, context.Log);
        var cleanup = new ChainPlanner(domain, store, checkpoints, context.Log).PlanCleanup();
        var removed = await new ChainPlanApplier(domain, store, checkpoints, context.Log).CleanUpAsync(cleanup, cancellationToken);
        if (repaired.Count == 0 && removed.Count == 0)
        {
            context.Log.Information("{Domain} needed no repair", domain.Name);
        }

        return ExitCodes.Success;
    }

    /// <summary>Removes the stale boots (all of them, or the one named <paramref name="name"/>); returns their names.</summary>
    private static async Task<IReadOnlyList<string>> RemoveStaleBootsAsync(LibvirtConnection libvirt, VerbContext context, string? name)
    {
        var removed = await new StaleBoots(libvirt, context.Log).RemoveAsync(includeRunning: true, only: name);
        if (removed.Count > 0)
        {
            return removed;
        }

        if (name is null)
        {
            context.Log.Information("no stale boot to remove");
        }
        else if (!File.Exists(BootLayout.RecordPathFor(BootLayout.RunDirectoryFor(name))))
        {
            context.Log.Debug("no boot named {Name} is recorded", name);
        }
        else
        {
            context.Log.Information("boot {Name} is not stale (it is being made, or runs with its server): virtbackup boot --stop {Name} removes it", name, name);
        }

        return removed;
    }
}
