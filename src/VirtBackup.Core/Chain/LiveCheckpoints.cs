using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Chain;

/// <summary>A running domain: libvirt deletes a checkpoint with its bitmaps, validates a redefined one, and checks the bitmaps at backupBegin.</summary>
public sealed class LiveCheckpoints(IDomain domain) : ICheckpointBitmaps
{
    public CheckpointCreateFlags RedefineFlags => CheckpointCreateFlags.Redefine | CheckpointCreateFlags.RedefineValidate;

    public Task<string?> ProblemAsync(string checkpoint, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task DeleteAsync(string checkpoint, CancellationToken cancellationToken)
    {
        domain.CheckpointDelete(checkpoint);
        return Task.CompletedTask;
    }

    /// <summary>None to remove while QEMU holds the images (an offline run's orphan is removed the next time the domain is off).</summary>
    public Task<IReadOnlyList<string>> RemoveOrphanBitmapsAsync(IReadOnlySet<string> committed, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<string>>([]);
}
