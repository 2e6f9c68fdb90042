using System.Globalization;
using System.Net;

namespace VirtBackup.Core.Recovery;

/// <summary>Where the server listens: a unix socket path, or a TCP address and port (port 0: any free port).</summary>
public sealed record ServeEndpoint
{
    private ServeEndpoint(string? socketPath, IPEndPoint? tcp)
    {
        SocketPath = socketPath;
        Tcp = tcp;
    }

    public string? SocketPath { get; }

    public IPEndPoint? Tcp { get; }

    public static ServeEndpoint Unix(string path) => new(Path.GetFullPath(path), null);

    /// <summary>Parses <c>ADDR:PORT</c> (<c>127.0.0.1:10809</c>, <c>[::1]:10809</c>); null when it is not one.</summary>
    public static ServeEndpoint? TryTcp(string addressAndPort) =>
        IPEndPoint.TryParse(addressAndPort, out var endpoint) && addressAndPort.Contains(':', StringComparison.Ordinal)
            && addressAndPort.LastIndexOf(':') > addressAndPort.LastIndexOf(']')
            ? new ServeEndpoint(null, endpoint)
            : null;

    /// <summary>The NBD URI of export <paramref name="name"/> once listening on <paramref name="bound"/> (TCP: the real port).</summary>
    public string Uri(string name, EndPoint? bound)
    {
        if (SocketPath is not null)
        {
            return $"nbd+unix:///{name}?socket={SocketPath}";
        }

        var tcp = bound as IPEndPoint ?? Tcp!;
        var host = tcp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{tcp.Address}]" : tcp.Address.ToString();
        return $"nbd://{host}:{tcp.Port.ToString(CultureInfo.InvariantCulture)}/{name}";
    }
}
