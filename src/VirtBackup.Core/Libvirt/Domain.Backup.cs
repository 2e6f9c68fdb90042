using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>
    /// Starts a backup job (<c>virDomainBackupBegin</c>). With <paramref name="checkpointXml"/>, libvirt
    /// creates that checkpoint atomically at the same point in time. In pull mode the NBD export is
    /// ready when this returns; the job runs until <see cref="AbortJob"/>. On the capture's critical
    /// path: the XML goes through untouched, one call.
    /// </summary>
    public void BackupBegin(string backupXml, string? checkpointXml = null, BackupBeginFlags flags = BackupBeginFlags.None) =>
        Check(LibvirtNative.virDomainBackupBegin(_handle, backupXml, checkpointXml, (uint)flags), "virDomainBackupBegin", Name);

    /// <summary>The virtual size in bytes of disk <paramref name="target"/> (vda) as the guest sees it (<c>virDomainGetBlockInfo</c>).</summary>
    public long GetBlockCapacity(string target)
    {
        Check(LibvirtNative.virDomainGetBlockInfo(_handle, target, out var info, 0), "virDomainGetBlockInfo", Name);
        return checked((long)info.Capacity);
    }

    /// <summary>The XML of the running backup job, with what libvirt filled in (<c>virDomainBackupGetXMLDesc</c>).</summary>
    public string BackupGetXml() =>
        TakeString(LibvirtNative.virDomainBackupGetXMLDesc(_handle, 0), "virDomainBackupGetXMLDesc", Name);

    /// <summary>Ends the current job (<c>virDomainAbortJob</c>); this is how a pull-mode backup finishes.</summary>
    public void AbortJob() => Check(LibvirtNative.virDomainAbortJob(_handle), "virDomainAbortJob", Name);

    /// <summary>The fixed-size summary of the current job (<c>virDomainGetJobInfo</c>).</summary>
    public DomainJobInfo GetJobInfo()
    {
        Check(LibvirtNative.virDomainGetJobInfo(_handle, out var info), "virDomainGetJobInfo", Name);
        return new DomainJobInfo((DomainJobType)info.Type, info.TimeElapsed, info.DataTotal, info.DataProcessed, info.DataRemaining);
    }

    /// <summary>The current (or, with <see cref="DomainJobStatsFlags.Completed"/>, last completed) job (<c>virDomainGetJobStats</c>).</summary>
    public unsafe DomainJobStats GetJobStats(DomainJobStatsFlags flags = DomainJobStatsFlags.None)
    {
        Check(LibvirtNative.virDomainGetJobStats(_handle, out var type, out var parameters, out var count, (uint)flags),
            "virDomainGetJobStats", Name);
        try
        {
            return new DomainJobStats((DomainJobType)type, TypedParameters.Read(parameters, count));
        }
        finally
        {
            LibvirtNative.virTypedParamsFree(parameters, count);
        }
    }
}
