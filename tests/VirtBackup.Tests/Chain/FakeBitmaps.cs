using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Chain;

/// <summary>
/// Checkpoints as <see cref="LiveCheckpoints"/> reaches them (libvirt deletes the checkpoint with its bitmaps), plus what
/// only a shut-off domain's images can say: a broken bitmap (<see cref="Problem"/>) and bitmaps no checkpoint names
/// (<see cref="Orphans"/>), removed by <see cref="RemoveOrphanBitmapsAsync"/>.
/// </summary>
internal sealed class FakeBitmaps(FakeDomain domain) : ICheckpointBitmaps
{
    private readonly LiveCheckpoints _live = new(domain);

    public string? Problem { get; set; }

    public List<string> Orphans { get; } = [];

    public List<string> Deleted { get; } = [];

    public IReadOnlySet<string>? OrphanCheckWith { get; private set; }

    public CheckpointCreateFlags RedefineFlags => _live.RedefineFlags;

    /// <summary>The checkpoints whose bitmaps <see cref="ProblemAsync"/> was asked about, in order.</summary>
    public List<string> Checked { get; } = [];

    public Task<string?> ProblemAsync(string checkpoint, CancellationToken cancellationToken)
    {
        Checked.Add(checkpoint);
        return Task.FromResult(Problem);
    }

    public async Task DeleteAsync(string checkpoint, CancellationToken cancellationToken)
    {
        await _live.DeleteAsync(checkpoint, cancellationToken);
        Deleted.Add(checkpoint);
    }

    public Task<IReadOnlyList<string>> RemoveOrphanBitmapsAsync(IReadOnlySet<string> committed, CancellationToken cancellationToken)
    {
        OrphanCheckWith = committed;
        var known = domain.CheckpointNames.Concat(committed).ToHashSet();
        IReadOnlyList<string> removed = [.. Orphans.Where(o => !known.Contains(o))];
        Orphans.Clear();
        return Task.FromResult(removed);
    }
}
