using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// What one <c>restore</c> run should do with one stream.
/// </summary>
/// <param name="NewName">Restore as this domain (new UUID, new MACs, its own NVRAM and TPM state); null keeps the stream's name and UUID.</param>
/// <param name="DiskDirectory">Where disk images go, as seen on the restored host (before <paramref name="TargetRoot"/>).</param>
/// <param name="Format">Image format of a full or copy restore; null means qcow2. An incremental keeps the chain's format.</param>
/// <param name="Define">Define the domain in libvirt once the files are in place.</param>
/// <param name="Force">Replace existing images, state files and a (shut-off) domain of the same name.</param>
/// <param name="TargetRoot">Prefix for every path written (Bacula's "where"); no libvirt is consulted then, and <paramref name="Define"/> is not allowed.</param>
public sealed record RestoreOptions(
    string? NewName = null,
    string DiskDirectory = RestoreOptions.DefaultDiskDirectory,
    DiskFormat? Format = null,
    bool Define = false,
    bool Force = false,
    string? TargetRoot = null)
{
    public const string DefaultDiskDirectory = "/var/lib/libvirt/images";
    public const string NvramDirectory = "/var/lib/libvirt/qemu/nvram";
    public const string SwtpmDirectory = "/var/lib/libvirt/swtpm";

    /// <summary>The input may go on after the stream (stdin): see <see cref="ReaderOptions.StopAtEndOfArchive"/>.</summary>
    public bool StopAtEndOfArchive { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for combinations that cannot work.</summary>
    public void Validate()
    {
        if (!Path.IsPathRooted(DiskDirectory))
        {
            throw new ArgumentException($"the disk directory '{DiskDirectory}' must be an absolute path");
        }

        if (TargetRoot is not null && !Path.IsPathRooted(TargetRoot))
        {
            throw new ArgumentException($"the target root '{TargetRoot}' must be an absolute path");
        }

        if (TargetRoot is not null && Define)
        {
            throw new ArgumentException("--define cannot be combined with --target-root: the restored files are not where libvirt would look for them");
        }

        if (NewName is not null && RestoreName.Problem(NewName) is { } problem)
        {
            throw new ArgumentException($"--as '{NewName}': {problem}");
        }
    }
}
