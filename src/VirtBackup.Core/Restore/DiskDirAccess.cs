using System.Globalization;
using System.Text.RegularExpressions;
using Serilog;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Restore;

/// <summary>The ids QEMU runs with on the restored host: a uid, the process's gid first, then its supplementary groups.</summary>
/// <param name="User">As qemu.conf names it (or libvirt's default), for messages.</param>
public sealed record QemuIdentity(string User, int Uid, IReadOnlyList<int> Gids);

/// <summary>
/// Before a restore writes anything: can QEMU reach the disk directory? libvirt opens the images as qemu.conf's
/// <c>user</c>/<c>group</c> (and gives the images to them with <c>dynamic_ownership</c>), but never changes the
/// directories above them, so QEMU needs the traverse (x) permission on every one of them, and a VM restored into a
/// private directory (<c>mktemp -d</c>, 0700) would be defined and then fail at <c>virsh start</c>. Refused
/// (<see cref="RestoreRefusedException"/>) when the restore defines the domain; a warning otherwise.
/// Owner, group and other bits are checked against QEMU's uid and groups; POSIX ACLs are not read (a directory
/// reachable only through an ACL entry counts as unreachable). QEMU running as root is not checked.
/// </summary>
public sealed partial class DiskDirAccess(IHypervisorHost host, QemuConf qemuConf, ILogger log)
{
    /// <summary>libvirt's build defaults when qemu.conf sets no user or group: Debian's, then Fedora's.</summary>
    private static readonly string[] DefaultAccounts = ["libvirt-qemu", "qemu"];

    /// <summary>Checks the directories down to <paramref name="diskDirectory"/> (those it creates get 0711).</summary>
    public async Task CheckAsync(string diskDirectory, bool define, CancellationToken cancellationToken)
    {
        if (await IdentityAsync(cancellationToken) is not { } qemu)
        {
            log.Debug("not checking that QEMU can reach {Directory}: neither qemu.conf's user nor libvirt's default user exists on {Host}", diskDirectory, host.Display);
            return;
        }

        if (!qemuConf.DynamicOwnership && qemu.Uid != 0)
        {
            log.Warning("dynamic_ownership = 0 in qemu.conf on {Host}: libvirt will not give the restored images (this user's, mode 0600) to QEMU's user {User}: "
                + "chown them to it before starting the domain", host.Display, qemu.User);
        }

        var directories = await host.Files.StatAncestorsAsync(diskDirectory, cancellationToken);
        if (FirstUnreachable(qemu, directories) is not { } blocked)
        {
            return;
        }

        var message = Problem(qemu, blocked, diskDirectory, host.IsRemote ? $" on {host.Display}" : string.Empty);
        if (define)
        {
            throw new RestoreRefusedException($"{message}. Nothing was written");
        }

        log.Warning("{Problem}. The restore goes on (without --define): fix this before defining and starting the domain", message);
    }

    /// <summary>The first of <paramref name="directories"/> (outermost first) that <paramref name="qemu"/> cannot traverse, or null.</summary>
    public static HostPathOwnership? FirstUnreachable(QemuIdentity qemu, IReadOnlyList<HostPathOwnership> directories) =>
        qemu.Uid == 0 ? null : directories.FirstOrDefault(d => (d.Permissions & TraverseBit(qemu, d)) == 0);

    /// <summary>What is wrong and what to run, e.g. <c>chmod o+x DIR</c>.</summary>
    public static string Problem(QemuIdentity qemu, HostPathOwnership blocked, string diskDirectory, string where)
    {
        var bit = TraverseBit(qemu, blocked);
        var (who, chmod) = bit switch
        {
            UnixFileMode.UserExecute => ("its owner", "u+x"),
            UnixFileMode.GroupExecute => ("its group", "g+x"),
            _ => ("others", "o+x"),
        };
        var ids = string.Join(",", qemu.Gids.Select(g => g.ToString(CultureInfo.InvariantCulture)));
        return $"QEMU runs as {qemu.User} (uid {qemu.Uid}, groups {ids}){where} and cannot enter '{blocked.Path}' "
            + $"(owner {blocked.Uid}:{blocked.Gid}, mode {HostPaths.Octal(blocked.Permissions)}: no x for {who}), "
            + $"so a domain whose disks are in '{diskDirectory}' would not start. Run chmod {chmod} {ShellWord(blocked.Path)} to let it in, "
            + $"or restore with --disk-dir into a directory QEMU can reach (default {RestoreOptions.DefaultDiskDirectory})";
    }

    /// <summary>The x bit that decides for <paramref name="qemu"/>: the owner's when it owns the directory, else the group's when it is in its group, else others'.</summary>
    private static UnixFileMode TraverseBit(QemuIdentity qemu, HostPathOwnership directory) =>
        directory.Uid == qemu.Uid ? UnixFileMode.UserExecute
        : qemu.Gids.Contains(directory.Gid) ? UnixFileMode.GroupExecute
        : UnixFileMode.OtherExecute;

    private async Task<QemuIdentity?> IdentityAsync(CancellationToken cancellationToken)
    {
        foreach (var user in qemuConf.User is { } configured ? [configured] : DefaultAccounts)
        {
            foreach (var group in qemuConf.Group is { } configuredGroup ? [configuredGroup] : DefaultAccounts)
            {
                if (!AccountSpec().IsMatch(user) || !AccountSpec().IsMatch(group))
                {
                    log.Debug("qemu.conf's user '{User}' or group '{Group}' is no account name or id: QEMU's access is not checked", user, group);
                    return null;
                }

                var (uidByName, gidByName) = await host.LookupAccountAsync(user.TrimStart('+'), group.TrimStart('+'), cancellationToken);
                if (Id(user, uidByName) is not { } uid || Id(group, gidByName) is not { } gid)
                {
                    continue;
                }

                // "+N" and a bare number that names no account have no name to look the supplementary groups up by.
                var groups = uidByName is not null && !user.StartsWith('+')
                    ? await host.LookupGroupListAsync(user, gid, cancellationToken)
                    : [gid];
                return new QemuIdentity(user, uid, [gid, .. groups.Where(g => g != gid)]);
            }
        }

        return null;
    }

    /// <summary>libvirt's reading of a user or group: "+N" is the id N, a name is looked up, a number that names none is the id.</summary>
    private static int? Id(string spec, int? byName) =>
        spec.StartsWith('+') || (byName is null && spec.All(char.IsAsciiDigit))
            ? int.TryParse(spec.TrimStart('+'), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : null
            : byName;

    private static string ShellWord(string path) => PlainWord().IsMatch(path) ? path : "'" + path.Replace("'", "'\\''") + "'";

    [GeneratedRegex(@"^(\+[0-9]+|[A-Za-z0-9_][A-Za-z0-9._-]*\$?)$")]
    private static partial Regex AccountSpec();

    [GeneratedRegex("^[A-Za-z0-9_./+:@-]+$")]
    private static partial Regex PlainWord();
}
