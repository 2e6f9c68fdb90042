using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Chain;

/// <summary>
/// How the chain planner reaches a domain's checkpoints and their bitmaps: through libvirt alone while the domain
/// runs (<see cref="LiveCheckpoints"/>); through libvirt's metadata and qemu-img on the images while it is shut off
/// (<see cref="OfflineCheckpoints"/>), because libvirt deletes and validates no checkpoint of an inactive domain.
/// </summary>
public interface ICheckpointBitmaps
{
    /// <summary>The flags that redefine a checkpoint libvirt lost (its bitmaps exist in the images).</summary>
    CheckpointCreateFlags RedefineFlags { get; }

    /// <summary>Why the bitmaps of <paramref name="checkpoint"/> cannot give an incremental, or null when they can (or only libvirt can tell).</summary>
    Task<string?> ProblemAsync(string checkpoint, CancellationToken cancellationToken);

    /// <summary>Deletes the checkpoint and its bitmaps.</summary>
    Task DeleteAsync(string checkpoint, CancellationToken cancellationToken);

    /// <summary>
    /// Removes bitmaps of ours (<see cref="ChainState.IsOurs"/>) that neither a libvirt checkpoint nor
    /// <paramref name="committed"/> (the chain's, which libvirt may have lost with a redefined domain) names: a run killed
    /// between adding a shut-off domain's bitmaps and redefining the checkpoint leaves them behind. Returns their names.
    /// </summary>
    Task<IReadOnlyList<string>> RemoveOrphanBitmapsAsync(IReadOnlySet<string> committed, CancellationToken cancellationToken);
}
