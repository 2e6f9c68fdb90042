namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>nbdkit in the foreground (-f) with a plugin and its parameters, stopped on dispose.</summary>
internal sealed class NbdkitServer : IAsyncDisposable
{
    private readonly PeerProcess _process;
    private readonly TempDir _dir;

    private NbdkitServer(PeerProcess process, TempDir dir)
    {
        _process = process;
        _dir = dir;
    }

    public NbdUri Uri => _process.Uri;

    /// <summary>Serves on a unix socket; <paramref name="pluginAndParameters"/> like ["memory", "size=1M"].</summary>
    public static Task<NbdkitServer> StartUnixAsync(params string[] pluginAndParameters)
    {
        var dir = new TempDir();
        var socket = dir.File("nbdkit.sock");
        return StartAsync(dir, NbdUri.Unix(socket), ["-U", socket, .. pluginAndParameters]);
    }

    /// <summary>Serves on a free TCP port of 127.0.0.1.</summary>
    public static Task<NbdkitServer> StartTcpAsync(params string[] pluginAndParameters)
    {
        var port = PeerProcess.FreeTcpPort();
        return StartAsync(new TempDir(), NbdUri.Tcp("127.0.0.1", port), ["-i", "127.0.0.1", "-p", port.ToString(), .. pluginAndParameters]);
    }

    private static async Task<NbdkitServer> StartAsync(TempDir dir, NbdUri uri, string[] arguments)
    {
        try
        {
            var process = await PeerProcess.StartAsync("nbdkit", uri, ["-f", .. arguments]);
            return new NbdkitServer(process, dir);
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _dir.Dispose();
    }
}
