using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace VirtBackup.IntegrationTests.Lab;

/// <summary>
/// A running firmware-only test VM made by integration/lab/domain.sh (q35, TCG, 128 MiB, OVMF with an
/// NVRAM, swtpm TPM 2.0, qcow2 disks vda, vdb, ...), named <c>vbt-&lt;random&gt;</c>. Dispose it with
/// <c>await using</c>: that destroys and undefines it and deletes its images, NVRAM, TPM state, scratch
/// files and sockets, also when the test fails. VMs a hung test never disposes are removed at process exit.
/// With <c>agent: true</c> it is the guest-agent VM instead (see LabVm.Agent.cs).
/// </summary>
public sealed partial class LabVm : IAsyncDisposable
{
    public const string ImagesDirectory = "/var/lib/libvirt/images";

    private static readonly ConcurrentDictionary<string, byte> Live = new();
    private int _disposed;

    static LabVm() => AppDomain.CurrentDomain.ProcessExit += (_, _) => RemoveLeftovers();

    private LabVm(string name, string uuid, int disks, long diskSizeBytes)
    {
        Name = name;
        Uuid = uuid;
        DiskTargets = Enumerable.Range(0, disks).Select(i => $"vd{(char)('a' + i)}").ToArray();
        DiskSizeBytes = diskSizeBytes;
    }

    public string Name { get; }

    public string Uuid { get; }

    /// <summary>vda, vdb, ...</summary>
    public IReadOnlyList<string> DiskTargets { get; }

    /// <summary>The qcow2 image of each disk, in <see cref="DiskTargets"/> order.</summary>
    public IReadOnlyList<string> DiskPaths => DiskTargets.Select(DiskPath).ToArray();

    public long DiskSizeBytes { get; }

    /// <summary>Where libvirt put the NVRAM (from the OVMF_VARS_4M template).</summary>
    public string NvramPath => $"/var/lib/libvirt/qemu/nvram/{Name}_VARS.fd";

    /// <summary>swtpm's state directory for the TPM 2.0.</summary>
    public string TpmStateDirectory => $"/var/lib/libvirt/swtpm/{Uuid}/tpm2";

    public string DiskPath(string target) => $"{ImagesDirectory}/{Name}-{target}.qcow2";

    /// <summary>A scratch file path for a pull-mode backup of <paramref name="target"/>; removed with the VM.</summary>
    public string ScratchPath(string target) => $"{ImagesDirectory}/{Name}-{target}.scratch";

    /// <summary>A unix socket path for a pull-mode backup's NBD server; removed with the VM.</summary>
    public string SocketPath(string purpose = "backup") => $"/tmp/{Name}-{purpose}.sock";

    /// <summary>
    /// Creates and starts a lab VM with <paramref name="disks"/> disks of <paramref name="diskSize"/>
    /// (qemu-img syntax); with <paramref name="fill"/> each disk holds the runs of <see cref="FillLayoutAsync"/>.
    /// With <paramref name="agent"/> (excludes <paramref name="fill"/>) it is a Linux guest running qemu-guest-agent,
    /// vda an ext4 file system mounted at /mnt, and this returns once the agent answers guest-ping.
    /// With <paramref name="oracle"/> (implies <paramref name="agent"/>, needs 2 disks) the guest also runs the consistency
    /// oracle on vdb (see <see cref="OracleConsole"/>).
    /// </summary>
    public static async Task<LabVm> CreateAsync(int disks = 1, string diskSize = "256M", bool fill = false, bool agent = false,
        bool oracle = false, CancellationToken cancellationToken = default)
    {
        await LabHost.EnsureDaemonsAsync();
        var name = $"vbt-{Guid.NewGuid():N}"[..14];
        List<string> arguments = ["create", name, "--disks", disks.ToString(CultureInfo.InvariantCulture), "--disk-size", diskSize];
        if (fill)
        {
            arguments.Add("--fill");
        }

        if (agent)
        {
            arguments.Add("--agent");
        }

        if (oracle)
        {
            arguments.Add("--oracle");
        }

        Live[name] = 0;
        try
        {
            var output = await LabHost.RunScriptAsync("domain.sh", arguments, cancellationToken);
            var uuid = output.Trim().Split('\n')[^1].Trim();
            var size = long.Parse((await LabHost.RunAsync("numfmt", ["--from=iec", diskSize.TrimEnd('B')], cancellationToken)).Trim(),
                CultureInfo.InvariantCulture);
            return new LabVm(name, uuid, disks, size);
        }
        catch
        {
            await RemoveAsync(name);
            throw;
        }
    }

    /// <summary>The --fill runs of disk <paramref name="diskIndex"/> (0 for vda).</summary>
    public async Task<IReadOnlyList<LabRun>> FillLayoutAsync(int diskIndex = 0) =>
        LabRun.ParseLayout(await LabHost.RunScriptAsync("domain.sh",
            ["layout", "--disk-size", DiskSizeBytes.ToString(CultureInfo.InvariantCulture), "--index", diskIndex.ToString(CultureInfo.InvariantCulture)],
            CancellationToken.None));

    /// <summary>
    /// Writes into the running VM like its guest would (HMP qemu-io, then flush): <paramref name="pattern"/>
    /// is a byte like "0x77", "zero" or "random" (incompressible bytes); <paramref name="target"/> a disk (vda) or a block node name.
    /// Offsets and lengths use qemu-io syntax (8M, 65536). Returns the block node written to.
    /// </summary>
    public async Task<string> InjectWriteAsync(string target, string offset, string length, string pattern,
        CancellationToken cancellationToken = default) =>
        (await LabHost.RunScriptAsync("domain.sh", ["write", Name, target, offset, length, pattern], cancellationToken)).Trim();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await RemoveAsync(Name);
        }
    }

    private static async Task RemoveAsync(string name)
    {
        await LabHost.RunScriptAsync("domain.sh", ["remove", name], CancellationToken.None);
        Live.TryRemove(name, out _);
    }

    private static void RemoveLeftovers()
    {
        foreach (var name in Live.Keys)
        {
            using var remove = Process.Start("bash", [LabHost.Script("domain.sh"), "remove", name]);
            remove.WaitForExit(TimeSpan.FromSeconds(30));
        }
    }
}
