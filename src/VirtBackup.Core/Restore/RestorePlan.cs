using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>A disk the stream carries and where it goes.</summary>
/// <param name="HostPath">The image's path as the restored host sees it (in the definition and the chain position).</param>
/// <param name="WrittenPath">The same path as this run writes it (under the target root, if any).</param>
/// <param name="IsOverlay">An incremental: the image exists and gets the changes through an overlay.</param>
public sealed record PlannedDisk(string Target, string HostPath, string WrittenPath, DiskFormat Format, long VirtualSize, bool IsOverlay);

/// <summary>
/// Everything decided from the manifest before a byte is written: who the restored domain is, where each part
/// goes, and (for an incremental) which restored chain it continues.
/// </summary>
/// <param name="Previous">The chain position an incremental continues, or the one a full/copy replaces.</param>
/// <param name="NewIdentity">Restored under <c>--as</c> with a new UUID (or the UUID of the domain it replaces).</param>
/// <param name="TpmOwner">swtpm's uid/gid for the TPM state; null when not running as root (target root only).</param>
/// <param name="ReplacesDomain">A defined libvirt domain this restore replaces (with --force, or the incremental's own).</param>
public sealed record RestorePlan(
    Manifest Manifest,
    RestoreLayout Layout,
    ChainPosition? Previous,
    IReadOnlyList<PlannedDisk> Disks,
    bool NewIdentity,
    (int Uid, int Gid)? TpmOwner,
    bool ReplacesDomain)
{
    public string Name => Layout.Name;

    public string Uuid => Layout.Uuid;

    /// <summary>An incremental or differential: applied on top of the chain restored so far.</summary>
    public bool IsIncremental => Manifest.Level is BackupLevel.Inc or BackupLevel.Diff;

    public string? NvramHostPath => Manifest.NvramPresent ? Layout.NvramPath : Previous?.NvramPath;

    public string? TpmHostDirectory => Manifest.Tpm.Present ? Layout.TpmStateDirectory(Manifest.Tpm.Version) : Previous?.TpmStateDirectory;

    public PlannedDisk? Disk(string target) => Disks.FirstOrDefault(d => d.Target == target);

    /// <summary>The chain position once this stream is applied.</summary>
    public ChainPosition NextPosition(IReadOnlyList<RestoredDisk> disks) => new(
        ChainPosition.CurrentFormatVersion,
        Name,
        Uuid,
        Manifest.DomainUuid,
        Manifest.ChainId,
        Manifest.Checkpoint,
        Manifest.Level,
        IsIncremental ? Previous!.Streams + 1 : 1,
        DateTime.UtcNow,
        Manifest.CreatedUtc,
        disks,
        NvramHostPath,
        TpmHostDirectory)
    {
        Chain = Manifest.Chain,
    };
}
