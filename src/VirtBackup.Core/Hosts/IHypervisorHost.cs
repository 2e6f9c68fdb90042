using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Hosts;

/// <summary>
/// The machine the domains run on, as backup and restore reach it: this machine, or a remote one over SSH
/// (<c>qemu+ssh://</c>). Domain operations go through libvirt; what libvirt does not do (the state files,
/// qemu.conf, the job's socket directory, qemu-img and qemu-nbd for a restore) goes through this.
/// </summary>
public interface IHypervisorHost : IAsyncDisposable
{
    /// <summary>"this host", or the remote <c>user@host:port</c>, for messages.</summary>
    string Display { get; }

    bool IsRemote { get; }

    /// <summary>The address this machine reaches the host's TCP services at (libvirt's NBD server over TCP).</summary>
    string Address { get; }

    IHostFiles Files { get; }

    IHostImages Images { get; }

    /// <summary>The host's <c>/etc/libvirt/qemu.conf</c> settings (the defaults when it has none, or when it cannot be read).</summary>
    Task<QemuConf> ReadQemuConfAsync(CancellationToken cancellationToken);

    /// <summary>
    /// A new private directory on the host for one backup job's NBD unix socket, owned by
    /// <paramref name="owner"/> (the running QEMU's uid and gid, which creates the socket), and a path that
    /// reaches that socket from here: the socket itself locally, the local end of an SSH forward remotely. The
    /// directory is noted in <paramref name="leftovers"/> before it is made, and forgotten once disposing removed it.
    /// </summary>
    Task<IJobSocket> CreateJobSocketAsync(string domainUuid, (int Uid, int Gid)? owner, HostLeftovers leftovers, CancellationToken cancellationToken);

    /// <summary>Whether the host-side operations run as root (needed to give files to swtpm's user).</summary>
    Task<bool> IsSuperuserAsync(CancellationToken cancellationToken);

    /// <summary>The uid of <paramref name="user"/> and the gid of <paramref name="group"/> on the host; null for each that does not exist.</summary>
    Task<(int? Uid, int? Gid)> LookupAccountAsync(string user, string group, CancellationToken cancellationToken);

    /// <summary>
    /// The groups a process runs in that libvirt starts as <paramref name="user"/> with group <paramref name="gid"/>, as it
    /// starts QEMU (libvirt's virGetGroupList): <paramref name="gid"/>, the user's primary group and every group listing
    /// the user, as <c>id -G</c> names them; just <paramref name="gid"/> when there is no such user.
    /// </summary>
    Task<IReadOnlyList<int>> LookupGroupListAsync(string user, int gid, CancellationToken cancellationToken);
}

/// <summary>One backup job's NBD socket: where QEMU creates it on the host, and where to connect to it here.
/// Disposing removes the directory (and the forward).</summary>
public interface IJobSocket : IAsyncDisposable
{
    /// <summary>The socket path on the host, for the &lt;domainbackup&gt; document.</summary>
    string HostPath { get; }

    /// <summary>The path to connect to from this machine.</summary>
    string LocalPath { get; }
}
