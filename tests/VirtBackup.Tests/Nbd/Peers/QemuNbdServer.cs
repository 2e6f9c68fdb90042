namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>qemu-nbd serving one image from a temp dir over a unix socket (or TCP), stopped on dispose.</summary>
internal sealed class QemuNbdServer : IAsyncDisposable
{
    private readonly PeerProcess _process;

    private QemuNbdServer(PeerProcess process, TempDir dir, string image)
    {
        _process = process;
        Dir = dir;
        Image = image;
    }

    public TempDir Dir { get; }

    public string Image { get; }

    public NbdUri Uri => _process.Uri;

    /// <summary>
    /// Serves <paramref name="image"/> (qcow2) in the foreground with --persistent so every test may reconnect;
    /// <paramref name="extraArguments"/> are passed through (e.g. "-r", "-x", "name", "-B", "bitmap").
    /// </summary>
    public static Task<QemuNbdServer> StartAsync(TempDir dir, string image, string exportName, params string[] extraArguments) =>
        StartFormatAsync(dir, "qcow2", image, exportName, extraArguments);

    /// <summary>Like <see cref="StartAsync"/>, for an image of another <paramref name="format"/> (e.g. "raw").</summary>
    public static async Task<QemuNbdServer> StartFormatAsync(TempDir dir, string format, string image, string exportName, params string[] extraArguments)
    {
        var socket = dir.File("nbd.sock");
        var arguments = new List<string> { "-f", format, "--persistent", "-e", "64", "-k", socket };
        if (exportName.Length > 0)
        {
            arguments.AddRange(["-x", exportName]);
        }

        arguments.AddRange(extraArguments);
        arguments.Add(image);
        var process = await PeerProcess.StartAsync("qemu-nbd", NbdUri.Unix(socket, exportName), [.. arguments]);
        return new QemuNbdServer(process, dir, image);
    }

    /// <summary>Serves <paramref name="image"/> (qcow2) on a free TCP port of 127.0.0.1; TLS options go in <paramref name="extraArguments"/>.</summary>
    public static async Task<QemuNbdServer> StartTcpAsync(TempDir dir, string image, string exportName, params string[] extraArguments)
    {
        var port = PeerProcess.FreeTcpPort();
        var arguments = new List<string> { "-f", "qcow2", "--persistent", "-e", "64", "-b", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-x", exportName };
        arguments.AddRange(extraArguments);
        arguments.Add(image);
        var process = await PeerProcess.StartAsync("qemu-nbd", NbdUri.Tcp("127.0.0.1", port, exportName), [.. arguments]);
        return new QemuNbdServer(process, dir, image);
    }

    /// <summary>What the server printed (its error messages).</summary>
    public string Output => _process.Output;

    public async ValueTask DisposeAsync() => await _process.DisposeAsync();
}
