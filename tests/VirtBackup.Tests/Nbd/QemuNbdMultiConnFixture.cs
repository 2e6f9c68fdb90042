using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>
/// A 64 MiB raw image of known, position-dependent bytes, served read-only by qemu-nbd with up to 8 connections
/// (-e 8, --persistent; read-only, so it advertises multi-conn).
/// </summary>
public sealed class QemuNbdMultiConnFixture : IAsyncLifetime
{
    public const long Size = 64 * Mi;

    private const long Mi = 1024 * 1024;

    private readonly TempDir _dir = new();
    private QemuNbdServer? _server;

    /// <summary>The raw image file (for a second server that serves it with injected errors).</summary>
    public string Image { get; private set; } = "";

    internal QemuNbdServer Server => _server ?? throw new InvalidOperationException("qemu-nbd did not start");

    /// <summary>What every byte of the export reads as: each 4-byte word holds its own offset, mixed with a salt.</summary>
    public byte[] Expected { get; } = BuildExpected();

    private static byte[] BuildExpected()
    {
        var bytes = new byte[Size];
        for (var i = 0; i < bytes.Length; i += 4)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i), (uint)i * 2654435761u);
        }

        return bytes;
    }

    public async Task InitializeAsync()
    {
        var image = _dir.File("pattern.raw");
        await File.WriteAllBytesAsync(image, Expected);
        _server = await QemuNbdServer.StartFormatAsync(_dir, "raw", image, "pattern", "-r", "-e", "8");
        Image = image;
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
