using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// A 64 MiB qcow2 with a known layout, served read-only by qemu-nbd as export "disk1":
/// data 0x11 at [0, 1M), a zero cluster range at [4M, 5M) (write -z), data 0x22 at [6M, 6.5M),
/// explicitly written zero bytes at [7M, 7M+64K) (allocated data), data 0x33 at [40M, 40M+64K); the rest unallocated.
/// </summary>
public sealed class QemuNbdLayoutFixture : IAsyncLifetime
{
    public const long Size = 64 * Mi;
    public const string ExportName = "disk1";
    public const string Description = "first disk";
    private const long Mi = 1024 * 1024;
    private const long Ki = 1024;

    private readonly TempDir _dir = new();
    private QemuNbdServer? _server;

    internal QemuNbdServer Server => _server ?? throw new InvalidOperationException("qemu-nbd did not start");

    /// <summary>What every byte of the export must read as.</summary>
    public byte[] Expected { get; } = BuildExpected();

    /// <summary>base:allocation as qemu-nbd reports this layout: flags 0 = data, 3 = hole|zero.</summary>
    public static IReadOnlyList<(long Offset, long Length, uint Flags)> ExpectedAllocation { get; } =
    [
        (0, 1 * Mi, 0),
        (1 * Mi, 5 * Mi, 3),
        (6 * Mi, 512 * Ki, 0),
        (6 * Mi + 512 * Ki, 512 * Ki, 3),
        (7 * Mi, 64 * Ki, 0),
        (7 * Mi + 64 * Ki, 33 * Mi - 64 * Ki, 3),
        (40 * Mi, 64 * Ki, 0),
        (40 * Mi + 64 * Ki, 24 * Mi - 64 * Ki, 3),
    ];

    internal static byte[] BuildExpected()
    {
        var bytes = new byte[Size];
        bytes.AsSpan(0, (int)Mi).Fill(0x11);
        bytes.AsSpan((int)(6 * Mi), (int)(512 * Ki)).Fill(0x22);
        bytes.AsSpan((int)(40 * Mi), (int)(64 * Ki)).Fill(0x33);
        return bytes;
    }

    public async Task InitializeAsync()
    {
        var image = _dir.File("layout.qcow2");
        await Tool.CreateQcow2Async(image, "64M",
            "write -P 0x11 0 1M", "write -z 4M 1M", "write -P 0x22 6M 512K", "write -P 0 7M 64K", "write -P 0x33 40M 64K");
        _server = await QemuNbdServer.StartAsync(_dir, image, ExportName, "-r", "-D", Description);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _dir.Dispose();
    }
}
