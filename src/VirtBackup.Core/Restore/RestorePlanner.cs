using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// Decides, from the manifest alone and before anything is written, what a restore will do, and refuses what it
/// must not do: a name that cannot be a file name, existing images, state or domain without <c>--force</c>, a
/// running domain (even with <c>--force</c>), and an incremental or differential stream that does not continue the
/// restored chain exactly (its parent must be the last checkpoint applied, in the same chain: for a differential, the
/// chain's full, so it applies right after the full only).
/// </summary>
/// <param name="libvirt">Consulted for existing domains; null with a target root (nothing there is libvirt's).</param>
/// <param name="host">Where the files go: this machine, or the remote host libvirt runs on.</param>
public sealed class RestorePlanner(LibvirtConnection? libvirt, IHypervisorHost host, QemuConf qemuConf, ILogger log)
{
    public async Task<RestorePlan> PlanAsync(Manifest manifest, RestoreOptions options, CancellationToken cancellationToken)
    {
        var name = options.NewName ?? manifest.DomainName;
        if (RestoreName.Problem(name) is { } problem)
        {
            throw new RestoreRefusedException(
                $"the stream's domain name '{manifest.DomainName}' cannot be used for file names ({problem}); restore it with --as NAME");
        }

        var owner = await TpmOwnerAsync(options, cancellationToken);
        var chainStore = new RestoreLayout(name, manifest.DomainUuid, options).ChainStore(host.Files);
        var previous = await chainStore.LoadAsync(name, cancellationToken);
        var interrupted = await chainStore.LoadCommitMarkerAsync(name, cancellationToken);
        if (interrupted is not null && interrupted == previous?.StreamId)
        {
            // The position was saved after everything else: that commit got through, only the marker is left.
            interrupted = null;
        }

        return manifest.Level is BackupLevel.Inc or BackupLevel.Diff
            ? await PlanIncrementalAsync(manifest, options, name, previous, chainStore, interrupted, owner, cancellationToken)
            : await PlanFullAsync(manifest, options, name, previous, chainStore, interrupted, owner, cancellationToken);
    }

    private async Task<RestorePlan> PlanFullAsync(Manifest manifest, RestoreOptions options, string name, ChainPosition? previous,
        ChainPositionStore chainStore, string? interrupted, (int Uid, int Gid)? owner, CancellationToken cancellationToken)
    {
        var newIdentity = options.NewName is not null;
        using var byName = libvirt?.TryLookupByName(name);
        var uuid = manifest.DomainUuid;
        if (newIdentity)
        {
            // Replacing an earlier restore under this name keeps its UUID (and so its TPM state directory).
            uuid = byName?.Uuid ?? (options.Force ? previous?.DomainUuid : null) ?? Guid.NewGuid().ToString("D");
        }

        var layout = new RestoreLayout(name, uuid, options);
        var format = options.Format ?? DiskFormat.Qcow2;
        var disks = manifest.Disks.Where(d => !d.Excluded).Select(d =>
        {
            var host = layout.DiskPath(d.Target, format);
            return new PlannedDisk(d.Target, host, layout.Written(host), format, d.VirtualSize, IsOverlay: false);
        }).ToList();

        var existing = new List<string>();
        foreach (var disk in disks)
        {
            if (await host.Files.StatAsync(disk.WrittenPath, cancellationToken) is { IsDirectory: false })
            {
                existing.Add($"disk image '{disk.WrittenPath}'");
            }
        }

        if (manifest.NvramPresent && await host.Files.StatAsync(layout.Written(layout.NvramPath), cancellationToken) is { IsDirectory: false })
        {
            existing.Add($"NVRAM file '{layout.Written(layout.NvramPath)}'");
        }

        var tpmDirectory = layout.Written(layout.TpmStateDirectory(manifest.Tpm.Version));
        if (manifest.Tpm.Present && await host.Files.StatAsync(tpmDirectory, cancellationToken) is { IsDirectory: true })
        {
            existing.Add($"TPM state directory '{tpmDirectory}'");
        }

        if (previous is not null)
        {
            existing.Add($"chain position '{chainStore.FilePath(name)}' (restored from {previous.Describe})");
        }

        if (interrupted is not null)
        {
            existing.Add($"an interrupted restore of '{interrupted}' ({chainStore.MarkerPath(name)})");
        }

        var replacesDomain = CheckDomains(byName, newIdentity ? null : uuid, name, existing);
        if (existing.Count > 0 && !options.Force)
        {
            throw new RestoreRefusedException(
                $"restoring '{name}' would replace what exists: {string.Join("; ", existing)}. Pass --force to replace it"
                + (newIdentity ? "" : ", or --as NEWNAME to restore a copy next to it"));
        }

        foreach (var excluded in manifest.Disks.Where(d => d.Excluded))
        {
            log.Warning("disk {Target} was excluded from this backup: it is not restored", excluded.Target);
        }

        return new RestorePlan(manifest, layout, previous, disks, newIdentity, owner, replacesDomain);
    }

    private async Task<RestorePlan> PlanIncrementalAsync(Manifest manifest, RestoreOptions options, string name, ChainPosition? previous,
        ChainPositionStore chainStore, string? interrupted, (int Uid, int Gid)? owner, CancellationToken cancellationToken)
    {
        var kind = manifest.Level == BackupLevel.Diff ? "differential" : "incremental";
        var stream = $"{kind} stream '{manifest.Checkpoint}' (chain '{manifest.ChainId}', parent '{manifest.ParentCheckpoint}', taken {manifest.CreatedUtc:u})";
        if (previous is null)
        {
            throw new ChainGapException(
                $"cannot apply the {stream}: nothing was restored as '{name}' in '{chainStore.Directory}' ({chainStore.FilePath(name)} is missing). "
                + "Restore the chain's full stream first" + (options.NewName is null ? ", or pass --as with the name it was restored as" : ""));
        }

        if (previous.ChainId is null)
        {
            throw new ChainGapException($"cannot apply the {stream}: '{name}' was restored from {previous.Describe}, which starts no chain");
        }

        if (previous.Chain != manifest.Chain && previous.SourceDomainUuid == manifest.DomainUuid)
        {
            throw new ChainGapException(
                $"cannot apply the {stream}: it is a backup of {ChainName.Describe(manifest.Chain)}, but '{name}' was restored from "
                + $"{ChainName.Describe(previous.Chain)} (up to {previous.Describe}); a domain's chains are independent and their streams never mix. "
                + $"Apply only streams of {ChainName.Describe(previous.Chain)}, or restore a full of {ChainName.Describe(manifest.Chain)} first (--force)");
        }

        if (previous.ChainId != manifest.ChainId || previous.SourceDomainUuid != manifest.DomainUuid)
        {
            throw new ChainGapException(
                $"cannot apply the {stream}: it belongs to another chain than '{name}', which was restored up to {previous.Describe} "
                + $"of domain {previous.SourceDomainUuid}. Apply only streams of chain '{previous.ChainId}', or restore a full of chain '{manifest.ChainId}' first");
        }

        var resuming = interrupted == manifest.Checkpoint;
        if (interrupted is not null && !resuming)
        {
            throw new ChainGapException(
                $"cannot apply the {stream}: an interrupted restore of '{interrupted}' left '{name}' between two states ({chainStore.MarkerPath(name)}). "
                + $"Apply '{interrupted}' again, or restore a full stream with --force");
        }

        if (resuming)
        {
            log.Warning("applying {Checkpoint} again: its earlier commit was interrupted, so the images may hold part of it", manifest.Checkpoint);
        }

        if (previous.Checkpoint == manifest.Checkpoint)
        {
            throw new ChainGapException($"the {stream} was already applied to '{name}' (restored up to {previous.Describe})");
        }

        if (manifest.Level == BackupLevel.Diff && previous.Checkpoint != manifest.ParentCheckpoint)
        {
            // Data-wise a diff covers whatever was applied since the full, but it applies only on the full as it was.
            throw new ChainGapException(
                $"cannot apply the {stream}: a differential applies only on its chain's full '{manifest.ParentCheckpoint}', but '{name}' was restored "
                + $"up to {previous.Describe}. Restore the full stream again (with --force), then this differential, then the incrementals taken after it");
        }

        if (previous.Checkpoint != manifest.ParentCheckpoint)
        {
            throw new ChainGapException(
                $"cannot apply the {stream}: it continues from checkpoint '{manifest.ParentCheckpoint}', but the last checkpoint applied to '{name}' "
                + $"is '{previous.Checkpoint}' ({previous.History}). Apply the chain's streams in order, each exactly once");
        }

        var layout = new RestoreLayout(name, previous.DomainUuid, options);
        if (options.Format is { } wanted && previous.Disks.Any(d => d.Format != wanted))
        {
            log.Warning("--format is ignored for an incremental stream: the restored images keep their format");
        }

        var disks = new List<PlannedDisk>();
        foreach (var disk in manifest.Disks.Where(d => !d.Excluded))
        {
            disks.Add(await PlanOverlayAsync(disk, previous, layout, options.Force || resuming, cancellationToken));
        }

        using var domain = libvirt?.TryLookupByName(name);
        var replacesDomain = CheckDomains(domain, previous.DomainUuid, name, []);
        return new RestorePlan(manifest, layout, previous, disks, options.NewName is not null, owner, replacesDomain);
    }

    /// <param name="anyMtime">Skip the check that the image is as the last restore left it (--force, or resuming an interrupted commit).</param>
    private async Task<PlannedDisk> PlanOverlayAsync(ManifestDisk disk, ChainPosition previous, RestoreLayout layout, bool anyMtime,
        CancellationToken cancellationToken)
    {
        var restored = previous.Disks.FirstOrDefault(d => d.Target == disk.Target)
            ?? throw new RestoreRefusedException(
                $"the stream carries disk {disk.Target}, which the restored chain of '{layout.Name}' does not have: restore a full backup");
        var written = layout.Written(restored.Path);
        if (await host.Files.StatAsync(written, cancellationToken) is not { IsDirectory: false } status)
        {
            throw new RestoreRefusedException($"the restored image of disk {disk.Target}, '{written}', is missing: restore the chain again from its full stream");
        }

        if (status.ModifiedUtcTicks != restored.ModifiedUtcTicks && !anyMtime)
        {
            throw new RestoreRefusedException(
                $"the restored image '{written}' changed after the last restore (was the VM started?): an incremental on top would mix two states. "
                + "Restore the chain again from its full stream, or pass --force to apply it anyway");
        }

        // qcow2 rounds the virtual size up to whole 512-byte sectors; a raw image has exactly the disk's size.
        var size = restored.Format == DiskFormat.Raw
            ? status.Size
            : (await host.Images.InfoAsync(written, forceShare: false, cancellationToken)).VirtualSize;
        if (size != disk.VirtualSize && size != (disk.VirtualSize + 511) / 512 * 512)
        {
            throw new RestoreRefusedException(
                $"disk {disk.Target} is {disk.VirtualSize} bytes in the stream but the restored image '{written}' has {size}: "
                + "a resized disk needs a new full backup");
        }

        return new PlannedDisk(disk.Target, restored.Path, written, restored.Format, disk.VirtualSize, IsOverlay: true);
    }

    /// <summary>
    /// Checks the libvirt domain the restore would replace (found by name) and, for a restore under the stream's own
    /// identity, the one holding its UUID. A running one is always refused; one of the same name with another UUID too.
    /// Adds what exists to <paramref name="existing"/>; returns whether a defined domain is replaced.
    /// </summary>
    private bool CheckDomains(Domain? byName, string? uuid, string name, List<string> existing)
    {
        if (libvirt is null)
        {
            return false;
        }

        if (uuid is not null && (byName is null || byName.Uuid != uuid))
        {
            using var byUuid = TryLookupByUuid(uuid);
            if (byUuid is not null)
            {
                throw new RestoreRefusedException(
                    $"libvirt domain '{byUuid.Name}' already has UUID {uuid}: restore with --as NEWNAME, or undefine '{byUuid.Name}' first");
            }

            if (byName is not null)
            {
                throw new RestoreRefusedException(
                    $"another libvirt domain named '{name}' exists (UUID {byName.Uuid}, the stream's is {uuid}): restore with --as NEWNAME, or undefine it first");
            }
        }

        if (byName is null)
        {
            return false;
        }

        if (byName.IsActive())
        {
            throw new RestoreRefusedException($"libvirt domain '{name}' is running: shut it down before restoring over it (or restore with --as NEWNAME)");
        }

        existing.Add($"libvirt domain '{name}' ({byName.Uuid})");
        return true;
    }

    private Domain? TryLookupByUuid(string uuid)
    {
        try
        {
            return libvirt!.LookupByUuid(uuid);
        }
        catch (DomainNotFoundException)
        {
            // No domain has it: the answer we wanted.
            return null;
        }
    }

    private async Task<(int Uid, int Gid)?> TpmOwnerAsync(RestoreOptions options, CancellationToken cancellationToken)
    {
        var where = host.IsRemote ? host.Display : "this host";
        var (user, group) = await host.LookupAccountAsync(qemuConf.SwtpmUser, qemuConf.SwtpmGroup, cancellationToken);
        if (!await host.IsSuperuserAsync(cancellationToken))
        {
            if (options.TargetRoot is null || host.IsRemote)
            {
                throw new RestoreRefusedException(host.IsRemote
                    ? $"restoring to {where} needs the remote user to be root: connect as root@ (the TPM state must be given to swtpm's user)"
                    : "restoring into libvirt's directories needs root (or restore elsewhere with --target-root DIR)");
            }

            log.Warning("not running as root: the TPM state keeps this user as its owner instead of '{User}'", qemuConf.SwtpmUser);
            return null;
        }

        return (
            user ?? throw new RestoreRefusedException($"the swtpm user '{qemuConf.SwtpmUser}' (swtpm_user in qemu.conf) does not exist on {where}"),
            group ?? throw new RestoreRefusedException($"the swtpm group '{qemuConf.SwtpmGroup}' (swtpm_group in qemu.conf) does not exist on {where}"));
    }
}
