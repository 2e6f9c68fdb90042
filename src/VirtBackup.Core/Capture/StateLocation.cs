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

    /// <summary>What to tell a user who cannot read the TPM state.</summary>
    public string TpmAdvice =>
        $"swtpm keeps it as user '{Swtpm.SwtpmUser}' (group '{Swtpm.SwtpmGroup}', directory mode 0700, so membership in the group is not enough). "
        + $"Run virtbackup as root, or as '{Swtpm.SwtpmUser}' (docs/RELIABILITY.md, non-root backups); the VM was not touched";

    public const string NvramAdvice =
        "libvirt keeps it readable by root and the qemu user only. Run virtbackup as root, or as a member of QEMU's group (libvirt-qemu on Debian) "
        + "after 'chmod g+r' on this file (docs/RELIABILITY.md, non-root backups); the VM was not touched";
}
