using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Hosts.Ssh;

namespace VirtBackup.Core.Hosts;

/// <summary>Which <see cref="IHypervisorHost"/> a libvirt URI means, connected.</summary>
public static class HostConnection
{
    /// <summary>
    /// This machine for a local URI (<c>qemu:///system</c>); for an SSH URI (<c>qemu+ssh://USER@HOST/system</c>)
    /// the remote host over one authenticated SSH connection (the system's OpenSSH: ~/.ssh/config, the agent,
    /// keys and known_hosts apply as for libvirt itself). Connect before anything touches a domain.
    /// </summary>
    /// <param name="sshOptions">Extra ssh arguments (e.g. from the config file).</param>
    /// <exception cref="PreflightException">A remote URI whose transport is not SSH.</exception>
    public static async Task<IHypervisorHost> ConnectAsync(
        string libvirtUri, IReadOnlyList<string>? sshOptions, ILogger log, CancellationToken cancellationToken)
    {
        if (IsLocal(libvirtUri))
        {
            return new LocalHypervisorHost();
        }

        if (!SshTarget.IsSshUri(libvirtUri))
        {
            throw new PreflightException(
                $"'{libvirtUri}' is a libvirt on another host without SSH: virtbackup reaches a remote host's state files and disks over SSH. "
                + "Use a qemu+ssh://USER@HOST/system URI, or run virtbackup on that host");
        }

        var session = await SshSession.ConnectAsync(SshTarget.FromLibvirtUri(libvirtUri, sshOptions), log: log, cancellationToken: cancellationToken);
        log.Information("connected to {Host} over SSH in {Milliseconds:F0} ms: one multiplexed connection carries the state files and the disk data",
            session.Display, session.ConnectTime.TotalMilliseconds);
        return new SshHypervisorHost(session, log);
    }

    /// <summary>True for a URI without a host (<c>qemu:///system</c>, <c>qemu+unix:///system</c>).</summary>
    public static bool IsLocal(string libvirtUri) =>
        Uri.TryCreate(libvirtUri, UriKind.Absolute, out var uri) && uri.Host.Length == 0;
}
