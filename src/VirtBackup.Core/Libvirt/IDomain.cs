namespace VirtBackup.Core.Libvirt;

/// <summary>
/// The operations on one domain that the chain planner, the capture, the backup job and the recovery of a failed run
/// use, and nothing more: <see cref="Domain"/> implements it with one libvirt call each; unit tests put a fake behind it
/// to run that logic in-process, with libvirt's failures (<see cref="LibvirtException"/> and its codes) injected at any
/// step. Members mean what the <see cref="Domain"/> members of the same name say.
/// </summary>
public interface IDomain : IDisposable
{
    string Name { get; }

    string Uuid { get; }

    DomainStateInfo GetState();

    bool IsActive();

    void Suspend();

    void Resume();

    int FSFreeze(IReadOnlyList<string>? mountpoints = null);

    int FSThaw(IReadOnlyList<string>? mountpoints = null);

    bool IsGuestAgentResponsive(int timeoutSeconds = 5);

    void BackupBegin(string backupXml, string? checkpointXml = null, BackupBeginFlags flags = BackupBeginFlags.None);

    string BackupGetXml();

    void AbortJob();

    DomainJobStats GetJobStats(DomainJobStatsFlags flags = DomainJobStatsFlags.None);

    IReadOnlyList<string> ListCheckpoints(CheckpointListFlags flags = CheckpointListFlags.Topological);

    /// <summary>Creates (or with <see cref="CheckpointCreateFlags.Redefine"/> redefines) a checkpoint from its XML; keeps no handle to it.</summary>
    void CheckpointCreate(string xml, CheckpointCreateFlags flags = CheckpointCreateFlags.None);

    string CheckpointGetXml(string name, CheckpointXmlFlags flags = CheckpointXmlFlags.None);

    void CheckpointDelete(string name, CheckpointDeleteFlags flags = CheckpointDeleteFlags.None);
}
