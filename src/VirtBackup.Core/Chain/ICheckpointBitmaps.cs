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
}
