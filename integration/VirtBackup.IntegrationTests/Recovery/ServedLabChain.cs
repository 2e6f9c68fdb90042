using System.Text;
using VirtBackup.IntegrationTests.Backup;
using VirtBackup.IntegrationTests.Lab;

namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// A full and two incrementals of one guest-agent VM with two 64 MiB disks, shared by <see cref="ServeLabTests"/>:
/// vda is the guest's ext4 (a file written before the full and rewritten before the last incremental), vdb a disk
/// the guest never touches, written between the backups with the known <see cref="VdbWrites"/> (data, zeros over
/// data and over never-written ranges). The last incremental is taken of the paused domain, which stays paused:
/// its images are the disks at the last backup instant, byte for byte. Everything is removed on dispose.
/// </summary>
public sealed class ServedLabChain : IAsyncLifetime
{
    public const int M = 1024 * 1024;
    public const int K = 64 * 1024;

    /// <summary>What the guest file holds at the last backup.</summary>
    public static readonly byte[] FileContent = Encoding.ASCII.GetBytes("rewritten before the second incremental\n");

    /// <summary>vdb's writes before the full (0), before the first (1) and the second incremental (2); null pattern: zeros.</summary>
    public static readonly IReadOnlyList<(int Before, long Offset, long Length, byte? Pattern)> VdbWrites =
    [
        (0, 0, M, 0x11), (0, 4 * M, K, 0x12), (0, 8 * M, 4 * M, 0x13), (0, 16 * M, M, null),
        (1, M / 2, M, 0x21), (1, 9 * M, M, null), (1, 20 * M, M, 0x22),
        (2, 0, K, null), (2, 20 * M, K, null), (2, 20 * M + M / 2, M / 4, 0x31), (2, 40 * M, K, 0x32),
    ];

    private BackupFixture? _backups;

    public LabVm Vm { get; private set; } = null!;

    /// <summary>Private to this chain (0700, root's), removed on dispose.</summary>
    public string Work { get; } = Directory.CreateTempSubdirectory("vbt-servelab-").FullName;

    /// <summary>full, inc1, inc2: the stream files, in chain order.</summary>
    public IReadOnlyList<string> Streams { get; private set; } = [];

    /// <summary>The guest file, as the guest sees it (under <see cref="LabVm.GuestMountPoint"/>) and inside vda's file system.</summary>
    public static string GuestFile => $"{LabVm.GuestMountPoint}{FileInDisk}";

    public static string FileInDisk => "/recovered.txt";

    /// <summary>vdb at the last backup, from <see cref="VdbWrites"/>.</summary>
    public static byte[] ExpectedVdb()
    {
        var image = new byte[64 * M];
        foreach (var (_, offset, length, pattern) in VdbWrites)
        {
            image.AsSpan((int)offset, (int)length).Fill(pattern ?? 0);
        }

        return image;
    }

    public async Task InitializeAsync()
    {
        try
        {
            await BuildAsync();
        }
        catch
        {
            await DisposeAsync(); // xunit does not dispose a fixture whose initialization failed
            throw;
        }
    }

    private async Task BuildAsync()
    {
        Vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", agent: true);
        _backups = new BackupFixture(Vm);
        await Vm.WriteGuestFileAsync(GuestFile, Encoding.ASCII.GetBytes("the first version, in the full\n"));
        var streams = new List<string>();
        for (var stage = 0; stage < 3; stage++)
        {
            foreach (var (_, offset, length, pattern) in VdbWrites.Where(w => w.Before == stage))
            {
                await Vm.InjectWriteAsync("vdb", offset.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    length.ToString(System.Globalization.CultureInfo.InvariantCulture), pattern is { } p ? $"0x{p:x2}" : "zero");
            }

            string[] extra = [];
            if (stage == 2)
            {
                // The guest's last write reaches vda (a freeze flushes it), then the domain is paused for good.
                await Vm.WriteGuestFileAsync(GuestFile, FileContent);
                await Vm.AgentCommandAsync("guest-fsfreeze-freeze");
                await Vm.AgentCommandAsync("guest-fsfreeze-thaw");
                await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "suspend", Vm.Name]);
                extra = ["--freeze", "off"];
            }

            var stream = await _backups.BackupAsync(stage == 0 ? "full" : "inc", extra);
            var path = Path.Combine(Work, $"{stage}-{(stage == 0 ? "full" : $"inc{stage}")}.tar");
            await File.WriteAllBytesAsync(path, stream.Bytes);
            streams.Add(path);
        }

        Streams = streams;
    }

    public async Task DisposeAsync()
    {
        _backups?.Dispose();
        _backups = null;
        if (Vm is not null)
        {
            await Vm.DisposeAsync();
        }

        if (Directory.Exists(Work))
        {
            Directory.Delete(Work, recursive: true);
        }
    }
}
