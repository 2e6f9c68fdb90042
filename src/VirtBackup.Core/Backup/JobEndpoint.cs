using Serilog;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Nbd;

namespace VirtBackup.Core.Backup;

/// <summary>
/// Where one backup job's NBD server listens on the host (<see cref="Server"/>, for the &lt;domainbackup&gt;
/// document) and how this machine reaches each disk's export there: the job's private unix socket (itself
/// locally, through an SSH forward for a remote host), or libvirt's TCP server. Ready before the pause.
/// </summary>
internal sealed class JobEndpoint : IAsyncDisposable
{
    private readonly IJobSocket? _socket;
    private readonly Func<string, NbdUri> _uri;

    private JobEndpoint(JobServer server, IJobSocket? socket, Func<string, NbdUri> uri, NbdTls? tls = null)
    {
        Server = server;
        _socket = socket;
        _uri = uri;
        Tls = tls;
    }

    public JobServer Server { get; }

    /// <summary>TLS for every connection to the exports (TCP with TLS only).</summary>
    public NbdTls? Tls { get; }

    public static async Task<JobEndpoint> OpenAsync(
        IHypervisorHost host,
        BackupOptions options,
        string domainUuid,
        (int Uid, int Gid)? qemuIds,
        HostLeftovers leftovers,
        ILogger log,
        CancellationToken cancellationToken)
    {
        if (options.NbdTransport == NbdTransport.Tcp)
        {
            var name = options.NbdTcpHost ?? host.Address;
            var port = options.NbdTcpPort;
            if (options.NbdTls is { } tls)
            {
                // The server's certificate must be issued for the address we connect to (unless the caller named another).
                log.Information("disk data comes from libvirt's NBD server on {Name}:{Port} over TCP with TLS (CA {Ca})", name, port, tls.CaCertificateFile);
                return new JobEndpoint(JobServer.Tcp(name, port, tls: true), null, target => NbdUri.Tcp(name, port, target), tls);
            }

            log.Information("disk data comes from libvirt's NBD server on {Name}:{Port} over TCP (not encrypted)", name, port);
            return new JobEndpoint(JobServer.Tcp(name, port), null, target => NbdUri.Tcp(name, port, target));
        }

        var socket = await host.CreateJobSocketAsync(domainUuid, qemuIds, leftovers, cancellationToken);
        return new JobEndpoint(JobServer.Unix(socket.HostPath), socket, target => NbdUri.Unix(socket.LocalPath, target));
    }

    /// <summary>The export of disk <paramref name="target"/> as this machine connects to it.</summary>
    public NbdUri Export(string target) => _uri(target);

    public ValueTask DisposeAsync() => _socket?.DisposeAsync() ?? ValueTask.CompletedTask;
}
