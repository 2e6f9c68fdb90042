using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Backup;

/// <summary>
/// The domain stopped (destroyed, powered off, crashed) while its disks were being read: the NBD export went with
/// its QEMU. Said as such, instead of as the NBD failure it shows up as.
/// </summary>
public sealed class DomainStoppedException(string domainName, NbdException nbd) : VirtBackupException(
    $"'{domainName}' stopped while its disks were being read, so the backup is incomplete. Its uncommitted checkpoint is "
    + $"removed by the next virtbackup run once the VM runs again (libvirt cannot delete it while it is off). The read failed with: {nbd.Message}",
    nbd)
{
    public override ErrorCategory Category => ErrorCategory.DiskTransfer;

    /// <summary>
    /// Whether <paramref name="domain"/> is gone or goes within two seconds: QEMU closes the export a moment before
    /// libvirt notices that it exited.
    /// </summary>
    public static async Task<bool> HasStoppedAsync(Domain domain)
    {
        try
        {
            for (var i = 0; i < 20; i++)
            {
                if (!domain.IsActive())
                {
                    return true;
                }

                await Task.Delay(100, CancellationToken.None);
            }
        }
        catch (LibvirtException)
        {
            // libvirt cannot say: report the NBD failure as it is.
        }

        return false;
    }
}
