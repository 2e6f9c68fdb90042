using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.CliApp.Verbs;

internal sealed class RepairVerb : IVerb
{
    public string Name => "repair";

    public string Summary =>
        "after a killed virtbackup: resume a VM it paused, thaw a guest it froze, abort its job, remove its uncommitted checkpoint, its job directory and scratch images";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("domain", "the domain to repair (required)", "NAME"),
        new("state-dir", $"where the checkpoint chain is remembered (default: the config file's state-dir, else {ChainStore.DefaultDirectory})", "DIR"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var name = options.Value("domain") ?? throw new UsageException("--domain NAME is required");
        using var libvirt = LibvirtConnection.Open(Settings.ConnectUri(options, context));
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
}
