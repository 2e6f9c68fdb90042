using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Serilog;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// A remote hypervisor reached over one authenticated, multiplexed <see cref="SshSession"/>: its files
/// (<see cref="SshHostFiles"/>), its qemu-img and qemu-nbd (<see cref="SshHostImages"/>), and the backup
/// job's NBD socket, forwarded here over the same connection. Owns the session.
/// </summary>
public sealed class SshHypervisorHost : IHypervisorHost
{
    /// <summary>Prints the file; exit 3: there is none, exit 4: the remote user cannot read it.</summary>
    private static readonly string ReadQemuConfScript = RemoteScripts.Load("read-qemu-conf.sh");

    /// <summary>"EUID UID GID" with "-" for a user or group that does not exist.</summary>
    private static readonly string AccountsScript = RemoteScripts.Load("accounts.sh");

    /// <summary>$1 = user. Its group ids (none when there is no such user).</summary>
    private static readonly string GroupListScript = RemoteScripts.Load("group-list.sh");

    /// <summary>$1 root, $2 the new directory (in the root; an existing one is an error), $3 owner, $4 group (empty: unchanged).</summary>
    private static readonly string CreateJobDirectoryScript = RemoteScripts.Load("create-job-directory.sh");

    private static readonly string RemoveDirectoryScript = RemoteScripts.Load("remove-directory.sh");

    private readonly ILogger _log;
    private QemuConf? _qemuConf;
    private int? _effectiveUid;

    public SshHypervisorHost(SshSession session, ILogger? log = null)
    {
        Session = session ?? throw new ArgumentNullException(nameof(session));
        _log = log ?? Serilog.Core.Logger.None;
        Files = new SshHostFiles(session, _log);
        Images = new SshHostImages(session, _log);
    }

    public SshSession Session { get; }

    public string Display => Session.Display;

    public bool IsRemote => true;

    public string Address => Session.HostName;

    public IHostFiles Files { get; }

    public IHostImages Images { get; }

    public async Task<QemuConf> ReadQemuConfAsync(CancellationToken cancellationToken)
    {
        if (_qemuConf is not null)
        {
            return _qemuConf;
        }

        var operation = $"read '{QemuConf.DefaultPath}'";
        var result = await Session.ExecuteAsync(ShellQuote.ShScript(ReadQemuConfScript, QemuConf.DefaultPath), null, operation, cancellationToken);
        switch (result.ExitCode)
        {
            case 0:
                _qemuConf = QemuConf.Parse(Encoding.UTF8.GetString(result.StandardOutput));
                break;
            case 3:
                _qemuConf = QemuConf.Defaults;
                break;
            case 4:
                _log.Warning(
                    "{User} cannot read {Path} on {Host}: assuming libvirt's defaults (swtpm runs as {SwtpmUser}:{SwtpmGroup})",
                    Session.RemoteUser, QemuConf.DefaultPath, Display, QemuConf.DefaultSwtpmUser, QemuConf.DefaultSwtpmGroup);
                _qemuConf = QemuConf.Defaults;
                break;
            default:
                throw RemoteException.CommandFailed(Display, operation, result.ExitCode, result.StandardError);
        }

        return _qemuConf;
    }

    public async Task<IJobSocket> CreateJobSocketAsync(
        string domainUuid, (int Uid, int Gid)? owner, HostLeftovers leftovers, CancellationToken cancellationToken)
    {
        // A name no other run picks (mkdir fails on an existing one), noted before it is made: a killed run's is removed later.
        var directory = $"{JobRuntimeDirectory.Root}/{HostPaths.Account(domainUuid, nameof(domainUuid))}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
        leftovers.Note(this, [directory]);
        await Session.RunAsync(
            ShellQuote.ShScript(
                CreateJobDirectoryScript,
                JobRuntimeDirectory.Root,
                directory,
                owner is { } o ? o.Uid.ToString(CultureInfo.InvariantCulture) : string.Empty,
                owner is { } g ? g.Gid.ToString(CultureInfo.InvariantCulture) : string.Empty),
            null,
            "create the backup job's socket directory",
            cancellationToken);
        var socket = directory + "/nbd.sock";
        string local;
        try
        {
            local = await Session.ForwardUnixSocketAsync(socket, cancellationToken);
        }
        catch
        {
            await RemoveAsync(directory, leftovers);
            throw;
        }

        _log.Information("the backup job's NBD socket {Remote} on {Host} is forwarded over SSH to {Local}", socket, Display, local);
        return new SshJobSocket(this, directory, socket, local, leftovers);
    }

    public async Task<bool> IsSuperuserAsync(CancellationToken cancellationToken) =>
        (_effectiveUid ?? (await AccountsAsync("root", "root", cancellationToken)).EffectiveUid) == 0;

    public async Task<(int? Uid, int? Gid)> LookupAccountAsync(string user, string group, CancellationToken cancellationToken)
    {
        var (_, uid, gid) = await AccountsAsync(user, group, cancellationToken);
        return (uid, gid);
    }

    public async Task<IReadOnlyList<int>> LookupGroupListAsync(string user, int gid, CancellationToken cancellationToken)
    {
        var operation = $"look up the groups of user '{user}'";
        var output = await Session.RunAsync(ShellQuote.ShScript(GroupListScript, HostPaths.Account(user, nameof(user))), null, operation, cancellationToken);
        var groups = new List<int> { gid };
        foreach (var field in Encoding.ASCII.GetString(output).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            groups.Add(int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                ? id
                : throw new RemoteException(Display, operation, 0, string.Empty, $"{operation} on {Display}: unexpected answer '{field}'"));
        }

        return groups.Distinct().ToList();
    }

    public ValueTask DisposeAsync() => Session.DisposeAsync();

    private async Task<(int EffectiveUid, int? Uid, int? Gid)> AccountsAsync(string user, string group, CancellationToken cancellationToken)
    {
        var operation = $"look up the user '{user}' and the group '{group}'";
        var output = await Session.RunAsync(
            ShellQuote.ShScript(AccountsScript, HostPaths.Account(user, nameof(user)), HostPaths.Account(group, nameof(group))),
            null,
            operation,
            cancellationToken);
        var fields = Encoding.ASCII.GetString(output).Trim().Split(' ');
        if (fields.Length != 3 || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var effective))
        {
            throw new RemoteException(Display, operation, 0, string.Empty, $"{operation} on {Display}: unexpected answer '{string.Join(' ', fields)}'");
        }

        _effectiveUid = effective;
        return (effective, Number(fields[1]), Number(fields[2]));

        static int? Number(string text) =>
            int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    private async Task RemoveAsync(string directory, HostLeftovers leftovers)
    {
        try
        {
            await Session.RunAsync(ShellQuote.ShScript(RemoveDirectoryScript, directory), null, $"remove '{directory}'", CancellationToken.None);
            leftovers.Forget(this, [directory]);
        }
        catch (RemoteException e)
        {
            // Cleanup must not hide the run's outcome; the directory stays noted, and the next run removes it.
            _log.Warning("could not remove {Directory} on {Host}: {Message}", directory, Display, e.Message);
        }
    }

    private sealed class SshJobSocket(SshHypervisorHost host, string directory, string hostPath, string localPath, HostLeftovers leftovers)
        : IJobSocket
    {
        public string HostPath => hostPath;

        public string LocalPath => localPath;

        public async ValueTask DisposeAsync()
        {
            try
            {
                await host.Session.CancelForwardAsync(localPath, CancellationToken.None);
            }
            catch (RemoteException e)
            {
                // The session ends the forward when it closes anyway.
                host._log.Debug("cancelling the forward {Local}: {Message}", localPath, e.Message);
            }

            await host.RemoveAsync(directory, leftovers);
        }
    }
}
