using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>
    /// Starts pulling the whole backing chain of disk <paramref name="target"/> (vda) into its top image while the guest
    /// runs (<c>virDomainBlockPull</c>, QEMU's block-stream): when the job ends well the image has no backing file.
    /// Returns at once; follow it with <see cref="GetBlockJob"/>.
    /// </summary>
    public void BlockPull(string target) =>
        Check(LibvirtNative.virDomainBlockPull(_handle, target, 0, 0), "virDomainBlockPull", Name);

    /// <summary>The block job on disk <paramref name="target"/> (<c>virDomainGetBlockJobInfo</c>), or null when none runs (ended, well or not).</summary>
    public BlockJobInfo? GetBlockJob(string target)
    {
        var found = Check(LibvirtNative.virDomainGetBlockJobInfo(_handle, target, out var info, 0), "virDomainGetBlockJobInfo", Name);
        return found == 0 ? null : new BlockJobInfo((BlockJobType)info.Type, info.Cur, info.End);
    }

    /// <summary>Cancels the block job on disk <paramref name="target"/> (<c>virDomainBlockJobAbort</c>); what it copied stays.</summary>
    public void AbortBlockJob(string target) =>
        Check(LibvirtNative.virDomainBlockJobAbort(_handle, target, 0), "virDomainBlockJobAbort", Name);
}

/// <summary><c>virDomainBlockJobType</c>.</summary>
public enum BlockJobType
{
    Unknown = 0,
    Pull = 1,
    Copy = 2,
    Commit = 3,
    ActiveCommit = 4,
    Backup = 5,
}

/// <summary><c>virDomainBlockJobInfo</c>: progress in bytes (<paramref name="Cur"/> of <paramref name="End"/>).</summary>
public sealed record BlockJobInfo(BlockJobType Type, ulong Cur, ulong End);
