using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Chain;

/// <summary>
/// The checkpoints of a shut-off domain, kept the way libvirt keeps them (docs: kbase/internals/incremental-backup):
/// a checkpoint is a persistent bitmap of its name in every qcow2 disk of it, and every such bitmap records
/// (enabled, the <c>auto</c> flag), so an incremental from C reads bitmap C alone. libvirt 9.0 creates, deletes and
/// validates no checkpoint of an inactive domain, but it does redefine one (without validation): so virtbackup adds
/// and removes the bitmaps itself with qemu-img, and creates or drops libvirt's record with a redefinition or a
/// metadata-only delete. No QEMU holds the images meanwhile (the domain is off; qemu-nbd's lock keeps it from starting
/// while the images are read).
/// </summary>
/// <param name="disks">The qcow2 disks of the backup (the ones that carry bitmaps).</param>
public sealed class OfflineCheckpoints(IDomain domain, IHostImages images, IReadOnlyList<DomainDisk> disks, ILogger log) : ICheckpointBitmaps
{
    /// <summary>_REDEFINE_VALIDATE needs a running domain ("domain is not running"): <see cref="ProblemAsync"/> checks instead.</summary>
    public CheckpointCreateFlags RedefineFlags => CheckpointCreateFlags.Redefine;

    public async Task<string?> ProblemAsync(string checkpoint, CancellationToken cancellationToken)
    {
        foreach (var disk in disks)
        {
            var bitmap = (await images.InfoAsync(disk.SourcePath!, forceShare: false, cancellationToken)).Bitmap(checkpoint);
            if (bitmap is null)
            {
                return $"disk {disk.Target} ('{disk.SourcePath}') has no bitmap '{checkpoint}' (was the image replaced, or the bitmap removed?)";
            }

            if (bitmap.InUse)
            {
                return $"bitmap '{checkpoint}' of disk {disk.Target} is marked in-use: the last QEMU did not close the image cleanly, so it may have missed writes";
            }

            if (!bitmap.Enabled)
            {
                return $"bitmap '{checkpoint}' of disk {disk.Target} is disabled: it did not record every write since the checkpoint";
            }
        }

        return null;
    }

    /// <summary>Drops libvirt's record (metadata only), then the bitmap from every disk that has it.</summary>
    public async Task DeleteAsync(string checkpoint, CancellationToken cancellationToken)
    {
        if (domain.ListCheckpoints().Contains(checkpoint))
        {
            // The record first: a record whose bitmap is gone makes libvirt fail every later delete of it on the running
            // domain ("bitmap not found in backing chain"), while a bitmap without a record is only a name taken.
            domain.CheckpointDelete(checkpoint, CheckpointDeleteFlags.MetadataOnly);
        }

        await RemoveBitmapsAsync(checkpoint, cancellationToken);
    }

    /// <summary>
    /// Creates checkpoint <paramref name="checkpoint"/> now: an enabled bitmap of that name in every disk (the bitmaps of
    /// earlier checkpoints stay as they are and go on recording), then libvirt's record of it, redefined from
    /// <paramref name="redefinitionXml"/>. A bitmap of that name that exists already was left by a killed run of ours (no
    /// libvirt checkpoint has the name, or the planner would not have chosen it): it is replaced.
    /// </summary>
    public async Task CreateAsync(string checkpoint, string redefinitionXml, CancellationToken cancellationToken)
    {
        await RemoveBitmapsAsync(checkpoint, cancellationToken);
        foreach (var disk in disks)
        {
            await images.AddBitmapAsync(disk.SourcePath!, checkpoint, cancellationToken);
        }

        domain.CheckpointCreate(redefinitionXml, RedefineFlags);
        log.Debug("created checkpoint {Checkpoint} of shut-off {Domain}: bitmaps added to {Disks}, checkpoint redefined",
            checkpoint, domain.Name, string.Join(",", disks.Select(d => d.Target)));
    }

    public async Task<IReadOnlyList<string>> RemoveOrphanBitmapsAsync(IReadOnlySet<string> committed, CancellationToken cancellationToken)
    {
        var known = domain.ListCheckpoints().Concat(committed).ToHashSet(StringComparer.Ordinal);
        var removed = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var disk in disks)
        {
            var info = await images.InfoAsync(disk.SourcePath!, forceShare: false, cancellationToken);
            foreach (var bitmap in info.Bitmaps.Where(b => ChainState.IsOurs(b.Name) && !known.Contains(b.Name)))
            {
                await images.RemoveBitmapAsync(disk.SourcePath!, bitmap.Name, cancellationToken);
                removed.Add(bitmap.Name);
            }
        }

        return [.. removed];
    }

    private async Task RemoveBitmapsAsync(string checkpoint, CancellationToken cancellationToken)
    {
        foreach (var disk in disks)
        {
            if ((await images.InfoAsync(disk.SourcePath!, forceShare: false, cancellationToken)).Bitmap(checkpoint) is not null)
            {
                await images.RemoveBitmapAsync(disk.SourcePath!, checkpoint, cancellationToken);
            }
        }
    }
}
