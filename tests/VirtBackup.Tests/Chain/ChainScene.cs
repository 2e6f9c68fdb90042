using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Chain;

/// <summary>One domain, its chain state in a directory of its own, the planner and the applier over a fake domain.</summary>
internal sealed class ChainScene : IDisposable
{
    public const string ChainId = "0123456789ab";
    public const string Foreign = "nightly-by-someone-else";

    private readonly TestDirectory _directory = new();

    public ChainScene()
    {
        Store = new ChainStore(_directory.Path);
        Bitmaps = new FakeBitmaps(Domain);
    }

    public FakeDomain Domain { get; } = new();

    public ChainStore Store { get; }

    public FakeBitmaps Bitmaps { get; }

    public LogLines Log { get; } = new();

    public ChainPlanner Planner => new(Domain, Store, Bitmaps, Log.Logger);

    public ChainPlanApplier Applier => new(Domain, Store, Bitmaps, Log.Logger);

    public static string Ours(int sequence, string chainId = ChainId) => ChainState.CheckpointName(chainId, sequence);

    public string StateFile => Path.Combine(Store.DomainDirectory(Domain.Uuid), "chain.json");

    /// <summary>A chain of <paramref name="committed"/> checkpoints on vda, saved; libvirt has them too unless <paramref name="inLibvirt"/> is false.</summary>
    public ChainState Committed(int committed, bool inLibvirt = true)
    {
        var checkpoints = Enumerable.Range(1, committed)
            .Select(i => new CommittedCheckpoint(Ours(i), i == 1 ? null : Ours(i - 1), i == 1 ? "full" : "inc",
                DateTimeOffset.UnixEpoch.AddDays(i), FakeDomain.CheckpointXmlOf(Ours(i))))
            .ToList();
        var state = new ChainState(Domain.Uuid, Domain.Name, ChainId, ["vda"], checkpoints);
        Store.Save(state);
        if (inLibvirt)
        {
            checkpoints.ForEach(c => Domain.AddCheckpoint(c.Name, c.Xml));
        }

        return state;
    }

    /// <summary>Plans, then applies what the plan says, as a backup run does.</summary>
    public async Task<ChainPlan> PlanAndApplyAsync(RequestedLevel level, params string[] disks)
    {
        var plan = await Planner.PlanAsync(level, disks.Length == 0 ? ["vda"] : disks, CancellationToken.None);
        return await Applier.ApplyAsync(plan, CancellationToken.None);
    }

    /// <summary>The store of <paramref name="chain"/> (null: the unnamed chain) over the same state directory.</summary>
    public ChainStore StoreOf(string? chain) => new(Store.StateDirectory, chain);

    public ChainPlanner PlannerOf(string? chain) => new(Domain, StoreOf(chain), Bitmaps, Log.Logger);

    public ChainPlanApplier ApplierOf(string? chain) => new(Domain, StoreOf(chain), Bitmaps, Log.Logger);

    /// <summary>A completed backup of <paramref name="chain"/>: planned, applied, its checkpoint created (as the job does it), committed.</summary>
    public async Task<ChainPlan> BackupAsync(RequestedLevel level, string? chain)
    {
        var plan = await ApplierOf(chain).ApplyAsync(await PlannerOf(chain).PlanAsync(level, ["vda"], CancellationToken.None), CancellationToken.None);
        Domain.AddCheckpoint(plan.Checkpoint!);
        ApplierOf(chain).Commit(plan, ["vda"]);
        return plan;
    }

    public void Dispose() => _directory.Dispose();
}
