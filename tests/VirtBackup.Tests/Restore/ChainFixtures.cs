using System.Security.Cryptography;

namespace VirtBackup.Tests.Restore;

/// <summary>What one synthetic stream holds; <see cref="SyntheticDisk.Image"/> is the whole disk at that backup.</summary>
internal sealed record StreamSpec(
    BackupLevel Level,
    string? ChainId,
    string? Checkpoint,
    string? Parent,
    IReadOnlyList<SyntheticDisk> Disks,
    byte[]? Nvram,
    IReadOnlyList<(string Path, byte[] Content)> Tpm,
    Compression Compression = Compression.Zstd,
    string DomainName = ChainFixtures.DomainName,
    string DomainUuid = ChainFixtures.DomainUuid,
    int FormatVersion = Manifest.CurrentFormatVersion)
{
    /// <summary>The manifest's chain name (<c>backup --chain</c>); null: the unnamed chain.</summary>
    public string? Chain { get; init; }
}

/// <summary>Synthetic full and incremental streams of one small domain, and the files a restore of them must produce.</summary>
internal static class ChainFixtures
{
    public const string DomainName = "win11";
    public const string DomainUuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0";
    public const int DiskSize = 1024 * 1024;

    public const string DomainXml = """
        <domain type='qemu' id='7'>
          <name>win11</name>
          <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
          <memory unit='KiB'>131072</memory>
          <os>
            <type arch='x86_64' machine='q35'>hvm</type>
            <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
            <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/win11_VARS.fd</nvram>
          </os>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/srv/vm/win11.qcow2' index='1'/>
              <backingStore/>
              <target dev='vda' bus='virtio'/>
              <alias name='virtio-disk0'/>
            </disk>
            <disk type='block' device='disk'>
              <driver name='qemu' type='raw'/>
              <source dev='/dev/vg0/win11-data'/>
              <target dev='vdb' bus='virtio'/>
            </disk>
            <disk type='block' device='disk'>
              <source dev='/dev/vg0/scratch'/>
              <target dev='sdc' bus='sata'/>
            </disk>
            <interface type='network'>
              <mac address='52:54:00:12:34:56'/>
              <source network='default'/>
              <target dev='vnet3'/>
              <alias name='net0'/>
            </interface>
            <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
          </devices>
        </domain>
        """;

    public static byte[] Nvram(int seed) => StreamFixtures.Content(4096 + seed, seed + 1000);

    public static IReadOnlyList<(string Path, byte[] Content)> Tpm(int seed) =>
    [
        (".lock", []),
        ("tpm2-00.permall", StreamFixtures.Content(6122, seed + 2000)),
    ];

    /// <summary>The full backup: vda with data and zero extents, vdb, and an excluded sdc.</summary>
    public static StreamSpec Full(string chain = "chain-a", Compression compression = Compression.Zstd) => new(
        BackupLevel.Full, chain, Checkpoint(chain, 1), null,
        [
            StreamFixtures.Disk("vda", DiskSize, 7,
                new DiskExtent(0, 150_000, false),
                new DiskExtent(150_000, 112_144, true),
                new DiskExtent(262_244, 337_756, false),
                new DiskExtent(DiskSize - 5000, 5000, false)),
            StreamFixtures.Disk("vdb", 300_000, 8, new DiskExtent(65_536, 4_464, false)),
            new SyntheticDisk("sdc", new byte[4096], [], Excluded: true),
        ],
        Nvram(1), Tpm(1), compression);

    /// <summary>
    /// The incremental after <paramref name="parent"/>: on vda, data over part of a zero extent and part of a data
    /// extent, zeros over other data; vdb unchanged (an empty map).
    /// </summary>
    /// <summary>One disk, small NVRAM and TPM: quick to restore, yet every member kind is there.</summary>
    public static StreamSpec Small() => Full() with
    {
        Disks =
        [
            StreamFixtures.Disk("vda", 200_000, 11,
                new DiskExtent(0, 70_000, false),
                new DiskExtent(70_000, 30_000, true),
                new DiskExtent(131_072, 20_000, false)),
        ],
        Nvram = StreamFixtures.Content(2_000, 5),
    };

    public static StreamSpec Next(StreamSpec parent, int sequence, int seed)
    {
        var vda = parent.Disks[0];
        var changes = new[]
        {
            new DiskExtent(0, 40_000, true),
            new DiskExtent(100_000 + sequence * 1000, 100_000, false),
            new DiskExtent(500_000, 65_536, true),
            new DiskExtent(700_000 + sequence * 4096, 70_000, false),
        };
        var image = (byte[])vda.Image.Clone();
        foreach (var e in changes)
        {
            var content = e.Zero ? new byte[e.Length] : StreamFixtures.Content((int)e.Length, seed + (int)e.Offset);
            content.CopyTo(image, e.Offset);
        }

        var chain = parent.ChainId!;
        return parent with
        {
            Level = BackupLevel.Inc,
            Checkpoint = Checkpoint(chain, sequence),
            Parent = parent.Checkpoint,
            Disks = [new SyntheticDisk("vda", image, changes), parent.Disks[1] with { Extents = [] }, parent.Disks[2]],
            Nvram = Nvram(sequence),
            Tpm = Tpm(sequence),
        };
    }

    /// <summary>
    /// The differential of <paramref name="full"/>'s chain taken after <paramref name="latest"/> (the full or a later
    /// stream of its chain) plus new changes: vda's extents are every 4 KiB block that differs from the full, as data.
    /// </summary>
    public static StreamSpec Diff(StreamSpec full, StreamSpec latest, int sequence, int seed)
    {
        var next = Next(latest, sequence, seed);
        var before = full.Disks[0].Image;
        var after = next.Disks[0].Image;
        var changed = new List<DiskExtent>();
        for (var offset = 0; offset < after.Length; offset += 4096)
        {
            var length = Math.Min(4096, after.Length - offset);
            if (after.AsSpan(offset, length).SequenceEqual(before.AsSpan(offset, length)))
            {
                continue;
            }

            if (changed.Count > 0 && changed[^1].End == offset)
            {
                changed[^1] = changed[^1] with { Length = changed[^1].Length + length };
            }
            else
            {
                changed.Add(new DiskExtent(offset, length, false));
            }
        }

        return next with
        {
            Level = BackupLevel.Diff,
            Parent = full.Checkpoint,
            Disks = [new SyntheticDisk("vda", after, changed), next.Disks[1], next.Disks[2]],
        };
    }

    /// <summary>The full and two incrementals after it, in chain order.</summary>
    public static (StreamSpec Full, StreamSpec Inc1, StreamSpec Inc2) FullAndTwoIncrementals()
    {
        var full = Full();
        var inc1 = Next(full, 2, 100);
        return (full, inc1, Next(inc1, 3, 200));
    }

    /// <summary>The full, an incremental after it, and the differential taken after that incremental.</summary>
    public static (StreamSpec Full, StreamSpec Inc, StreamSpec Diff) FullIncAndDiff()
    {
        var full = Full();
        var inc = Next(full, 2, 100);
        return (full, inc, Diff(full, inc, 3, 200));
    }

    /// <summary>The whole image of each disk after <paramref name="spec"/> and its parents were applied.</summary>
    public static byte[] Image(StreamSpec spec, string target) => spec.Disks.First(d => d.Target == target).Image;

    public static string Checkpoint(string chain, int sequence) => $"virtbackup-{chain}-{sequence:D4}";

    /// <summary>
    /// The manifest of stream <paramref name="sequence"/> of chain <paramref name="chain"/> (1: the full or copy, then
    /// each with the one before as parent) of a domain with one disk and no NVRAM or TPM.
    /// </summary>
    public static Manifest OneDiskManifest(string chain, BackupLevel level, int sequence, StreamWriterOptions options, ManifestDisk disk, FreezeState freeze) => new()
    {
        ToolVersion = "0.1.0-test",
        DomainName = DomainName,
        DomainUuid = DomainUuid,
        Level = level,
        Checkpoint = Checkpoint(chain, sequence),
        ParentCheckpoint = sequence == 1 ? null : Checkpoint(chain, sequence - 1),
        ChainId = chain,
        CreatedUtc = StreamFixtures.FixedTime,
        Freeze = freeze,
        Compression = CompressionInfo.From(options),
        Disks = [disk],
        Tpm = TpmInfo.None,
        NvramPresent = false,
    };

    public static async Task<byte[]> BuildAsync(StreamSpec spec)
    {
        var options = StreamFixtures.Options(spec.Compression);
        var manifest = new Manifest
        {
            FormatVersion = spec.FormatVersion,
            ToolVersion = "0.1.0-test",
            DomainName = spec.DomainName,
            DomainUuid = spec.DomainUuid,
            Level = spec.Level,
            Checkpoint = spec.Checkpoint,
            ParentCheckpoint = spec.Parent,
            ChainId = spec.ChainId,
            Chain = spec.Chain,
            CreatedUtc = StreamFixtures.FixedTime,
            PauseWindowMs = 42,
            Freeze = FreezeState.NoAgent,
            Compression = CompressionInfo.From(options),
            Disks = spec.Disks.Select(d => new ManifestDisk(d.Target, DiskFormat.Qcow2, d.VirtualSize, d.Excluded, $"/srv/vm/{d.Target}")).ToList(),
            Tpm = spec.Tpm.Count > 0 ? new TpmInfo(true, "2.0", null) : TpmInfo.None,
            NvramPresent = spec.Nvram is not null,
        };
        var output = new MemoryStream();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            var cancellationToken = CancellationToken.None;
            await writer.WriteManifestAsync(manifest, cancellationToken);
            await writer.WriteDomainXmlAsync(DomainXml, cancellationToken);
            if (spec.Nvram is { } nvram)
            {
                await writer.WriteNvramAsync("win11_VARS.fd", nvram, cancellationToken);
            }

            foreach (var (path, content) in spec.Tpm)
            {
                await writer.WriteTpmFileAsync(path, content, cancellationToken);
            }

            foreach (var disk in spec.Disks.Where(d => !d.Excluded))
            {
                await writer.WriteDiskMapAsync(disk.Target, disk.Extents, cancellationToken);
                await StreamFixtures.WriteDataAsync(writer, disk, 50_000);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        return output.ToArray();
    }

    /// <summary>Restores <paramref name="stream"/> in-process under <paramref name="root"/>, like <c>virtbackup restore --target-root</c>.</summary>
    public static Task<RestoreResult> RestoreAsync(byte[] stream, string root, DiskFormat format = DiskFormat.Raw, bool force = false, string? asName = null)
    {
        var run = new RestoreRun(null, QemuConf.Defaults, Serilog.Core.Logger.None);
        var options = new RestoreOptions(asName, Format: format, Force: force, TargetRoot: root);
        return run.RunAsync(options, new UnseekableStream(new MemoryStream(stream, writable: false)), CancellationToken.None);
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
