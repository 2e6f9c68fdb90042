using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// The layout of <see cref="QemuNbdLayoutFixture"/> served read-only over TCP by qemu-nbd that requires TLS and
/// verifies client certificates (tls-creds-x509 endpoint=server, verify-peer=on), with throwaway credentials.
/// </summary>
public sealed class QemuNbdTlsFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private TlsCredentials? _credentials;
    private QemuNbdServer? _server;

    internal QemuNbdServer Server => _server ?? throw new InvalidOperationException("qemu-nbd did not start");

    internal TlsCredentials Credentials => _credentials ?? throw new InvalidOperationException("no credentials");

    public NbdUri Uri => Server.Uri;

    public async Task InitializeAsync()
    {
        _credentials = new TlsCredentials();
        var image = _dir.File("layout.qcow2");
        await Tool.CreateQcow2Async(image, "64M",
            "write -P 0x11 0 1M", "write -z 4M 1M", "write -P 0x22 6M 512K", "write -P 0 7M 64K", "write -P 0x33 40M 64K");
        _server = await QemuNbdServer.StartTcpAsync(_dir, image, QemuNbdLayoutFixture.ExportName,
            "-r", "--object", $"tls-creds-x509,id=tls0,dir={_credentials.ServerDir},endpoint=server,verify-peer=on", "--tls-creds", "tls0");
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _credentials?.Dispose();
        _dir.Dispose();
    }
}
