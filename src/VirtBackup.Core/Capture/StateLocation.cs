using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// Where a domain keeps the state that is not on its disks: the UEFI NVRAM file and the swtpm state
/// directory, and who owns the TPM state (swtpm's user and group from qemu.conf).
/// </summary>
public sealed record StateLocation(string? NvramPath, string? TpmStateDirectory, DomainTpm? Tpm, QemuConf Swtpm)
{
    public static StateLocation Of(DomainXml xml, QemuConf swtpm)
    {
        var tpm = xml.Tpm;
        if (tpm is { Backend: TpmBackendType.Emulator, StateSourcePath: not null, StateSourceType: not "dir" })
        {
            throw new PreflightException(
                $"domain '{xml.Name}' keeps its TPM state in a {tpm.StateSourceType} '{tpm.StateSourcePath}', which VirtBackup cannot capture yet");
        }

        return new StateLocation(xml.NvramPath, tpm?.StateDirectory(xml.Uuid), tpm, swtpm);
    }

    /// <summary>
    /// The TPM state files worth keeping: all but swtpm's temporary files (<c>TMP2-00.permall</c>, <c>TMP-00.permall</c>
    /// for a TPM 1.2), which swtpm writes a new state into and then renames over the real one. One seen by the read is
    /// a store caught midway (or left by a crash): its content is partial, and the real file holds the state.
    /// </summary>
    public static IReadOnlyList<HostFile> WithoutSwtpmTemporaryFiles(IReadOnlyList<HostFile> tree) =>
        tree.Where(f => !IsSwtpmTemporaryFile(f.RelativePath)).ToList();

    internal static bool IsSwtpmTemporaryFile(string relativePath)
    {
        var name = relativePath[(relativePath.LastIndexOf('/') + 1)..];
        return name.StartsWith("TMP2-", StringComparison.Ordinal) || name.StartsWith("TMP-", StringComparison.Ordinal);
    }

    /// <summary>What to tell a user who cannot read the TPM state.</summary>
    public string TpmAdvice =>
        $"swtpm keeps it as user '{Swtpm.SwtpmUser}' (group '{Swtpm.SwtpmGroup}', directory mode 0700, so membership in the group is not enough). "
        + $"Run virtbackup as root, or as '{Swtpm.SwtpmUser}' (docs/RELIABILITY.md, non-root backups); the VM was not touched";

    public const string NvramAdvice =
        "libvirt keeps it readable by root and the qemu user only. Run virtbackup as root, or as a member of QEMU's group (libvirt-qemu on Debian) "
        + "after 'chmod g+r' on this file (docs/RELIABILITY.md, non-root backups); the VM was not touched";
}
