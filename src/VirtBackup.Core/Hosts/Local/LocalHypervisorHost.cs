using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>This machine as the hypervisor host (<c>qemu:///system</c>): plain files, local tools.</summary>
public sealed class LocalHypervisorHost(IHostFiles? files = null, IHostImages? images = null, string qemuConfPath = QemuConf.DefaultPath)
    : IHypervisorHost
{
    public string Display => "this host";

    public bool IsRemote => false;

    public string Address => "localhost";

    public IHostFiles Files { get; } = files ?? new LocalHostFiles();

    public IHostImages Images { get; } = images ?? new LocalHostImages();

    public Task<QemuConf> ReadQemuConfAsync(CancellationToken cancellationToken) => Task.FromResult(QemuConf.Load(qemuConfPath));

    public Task<IJobSocket> CreateJobSocketAsync(
        string domainUuid, (int Uid, int Gid)? owner, HostLeftovers leftovers, CancellationToken cancellationToken)
    {
        leftovers.Note(this, [JobRuntimeDirectory.PathFor(domainUuid)]);
        return Task.FromResult<IJobSocket>(new LocalJobSocket(this, JobRuntimeDirectory.Create(domainUuid, owner), leftovers));
    }

    public Task<bool> IsSuperuserAsync(CancellationToken cancellationToken) => Task.FromResult(Posix.EffectiveUserId == 0);

    public Task<(int? Uid, int? Gid)> LookupAccountAsync(string user, string group, CancellationToken cancellationToken) =>
        Task.FromResult((Posix.LookupUser(user)?.Uid, Posix.LookupGroup(group)));

    public Task<IReadOnlyList<int>> LookupGroupListAsync(string user, int gid, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<int>>(Posix.LookupUser(user) is { } account
            ? [gid, .. Posix.GroupList(user, account.Gid).Where(g => g != gid)]
            : [gid]);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class LocalJobSocket(LocalHypervisorHost host, JobRuntimeDirectory directory, HostLeftovers leftovers) : IJobSocket
    {
        public string HostPath => directory.SocketPath;

        public string LocalPath => directory.SocketPath;

        public ValueTask DisposeAsync()
        {
            directory.Dispose();
            leftovers.Forget(host, [directory.Path]);
            return ValueTask.CompletedTask;
        }
    }
}
