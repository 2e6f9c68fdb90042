using System.Text.Json;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>Full and incremental synthetic streams restored in-process under a target root, raw and qcow2, checked byte for byte.</summary>
public class RestoreRoundTripTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_full_stream_restored_as_raw_gives_every_disk_byte_the_nvram_and_the_tpm_state_with_private_modes()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();

        var result = await tree.RestoreAsync(full);

        Assert.Equal(ChainFixtures.Image(full, "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(full, "vdb"), await File.ReadAllBytesAsync(tree.Disk("vdb")));
        Assert.False(File.Exists(tree.Disk("sdc")));
        Assert.Equal(full.Nvram, await File.ReadAllBytesAsync(tree.Nvram()));
        Assert.Equal(full.Tpm[1].Content, await File.ReadAllBytesAsync(Path.Combine(tree.TpmDirectory(), "tpm2-00.permall")));
        Assert.Equal(
            [
                ".virtbackup/win11.chain.json",
                ".virtbackup/win11.xml",
                "win11-vda.img",
                "win11-vdb.img",
            ],
            Directory.EnumerateFiles(tree.Images, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(tree.Images, p)).Order(StringComparer.Ordinal));
        Assert.Equal("tss:tss 700", await StatAsync(tree.TpmDirectory()));
        Assert.Equal("tss:tss 600", await StatAsync(Path.Combine(tree.TpmDirectory(), "tpm2-00.permall")));
        Assert.Equal("tss:tss 600", await StatAsync(Path.Combine(tree.TpmDirectory(), ".lock")));
        Assert.Equal("root:root 711", await StatAsync(Path.GetDirectoryName(tree.TpmDirectory())!));
        Assert.Equal("root:root 600", await StatAsync(tree.Nvram()));
        Assert.Equal("root:root 600", await StatAsync(tree.Disk("vda")));
        Assert.Equal("root:root 600", await StatAsync(tree.ChainPosition()));
        Assert.Empty(tree.StagingLeftovers());
        Assert.Equal(("chain-a", "virtbackup-chain-a-0001", BackupLevel.Full, 1),
            (result.Position.ChainId, result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_raw_restore_keeps_zero_and_unallocated_ranges_as_holes()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();

        await tree.RestoreAsync(full);

        // vda holds 150000 + 337756 + 5000 data bytes in 1 MiB; 4 KiB blocks that hold data are allocated, the rest are holes.
        var allocated = long.Parse((await Tool.RunAsync("stat", "-c", "%b", tree.Disk("vda"))).Trim()) * 512;
        Assert.InRange(allocated, 492_756, 520_000);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_chain_position_names_the_chain_the_checkpoint_and_every_restored_image_as_the_host_sees_it()
    {
        using var tree = new RestoredTree();
        await tree.RestoreAsync(ChainFixtures.Full());

        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(tree.ChainPosition()));
        var root = json.RootElement;

        Assert.Equal("win11", root.GetProperty("domainName").GetString());
        Assert.Equal(ChainFixtures.DomainUuid, root.GetProperty("domainUuid").GetString());
        Assert.Equal("chain-a", root.GetProperty("chainId").GetString());
        Assert.Equal("virtbackup-chain-a-0001", root.GetProperty("checkpoint").GetString());
        Assert.Equal("full", root.GetProperty("level").GetString());
        Assert.Equal(
            ["/var/lib/libvirt/images/win11-vda.img", "/var/lib/libvirt/images/win11-vdb.img"],
            root.GetProperty("disks").EnumerateArray().Select(d => d.GetProperty("path").GetString()));
        Assert.Equal("/var/lib/libvirt/qemu/nvram/win11_VARS.fd", root.GetProperty("nvramPath").GetString());
        Assert.Equal($"/var/lib/libvirt/swtpm/{ChainFixtures.DomainUuid}/tpm2", root.GetProperty("tpmStateDirectory").GetString());
    }

    [Theory(Timeout = 120_000)]
    [InlineData(DiskFormat.Raw, Compression.Zstd)]
    [InlineData(DiskFormat.Qcow2, Compression.Zstd)]
    [InlineData(DiskFormat.Qcow2, Compression.None)]
    public async Task A_full_and_two_incrementals_give_the_disks_and_state_of_the_last_backup(DiskFormat format, Compression compression)
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full(compression: compression);
        var inc1 = ChainFixtures.Next(full, 2, 100);
        var inc2 = ChainFixtures.Next(inc1, 3, 200);

        await tree.RestoreAsync(full, format);
        await tree.RestoreAsync(inc1, format);
        var result = await tree.RestoreAsync(inc2, format);

        Assert.Equal(ChainFixtures.Image(inc2, "vda"), await ReadImageAsync(tree.Disk("vda", format), format, ChainFixtures.DiskSize));
        Assert.Equal(ChainFixtures.Image(full, "vdb"), await ReadImageAsync(tree.Disk("vdb", format), format, 300_000));
        Assert.Equal(inc2.Nvram, await File.ReadAllBytesAsync(tree.Nvram()));
        Assert.Equal(inc2.Tpm[1].Content, await File.ReadAllBytesAsync(Path.Combine(tree.TpmDirectory(), "tpm2-00.permall")));
        Assert.Equal("tss:tss 700", await StatAsync(tree.TpmDirectory()));
        Assert.Equal(("virtbackup-chain-a-0003", BackupLevel.Inc, 3), (result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
        Assert.Empty(tree.StagingLeftovers());
        Assert.Equal([tree.TpmDirectory()], Directory.EnumerateDirectories(Path.GetDirectoryName(tree.TpmDirectory())!));
    }

    [Theory(Timeout = 120_000)]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(1, 3)]
    [InlineData(2, 3)]
    public async Task A_full_of_one_format_version_with_incrementals_of_another_gives_the_disks_of_the_last_backup(int fullVersion, int incVersion)
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full() with { FormatVersion = fullVersion };
        var inc1 = ChainFixtures.Next(full, 2, 100) with { FormatVersion = incVersion };
        var inc2 = ChainFixtures.Next(inc1, 3, 200);

        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(full), tree.Root);
        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(inc1), tree.Root);
        var result = await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(inc2), tree.Root);

        Assert.Equal(ChainFixtures.Image(inc2, "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.Equal(ChainFixtures.Image(full, "vdb"), await File.ReadAllBytesAsync(tree.Disk("vdb")));
        Assert.Equal(("virtbackup-chain-a-0003", BackupLevel.Inc, 3), (result.Position.Checkpoint, result.Position.Level, result.Position.Streams));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_qcow2_restore_stays_thin_zero_ranges_are_not_allocated()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full() with
        {
            Disks = [StreamFixtures.Disk("vda", 8 << 20, 3, new DiskExtent(0, 1 << 20, false), new DiskExtent(1 << 20, 6 << 20, true))],
        };

        await tree.RestoreAsync(full, DiskFormat.Qcow2);

        var map = JsonDocument.Parse(await Tool.RunAsync("qemu-img", "map", "--output=json", "-f", "qcow2", tree.Disk("vda", DiskFormat.Qcow2)))
            .RootElement.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean())
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64()));
        Assert.Equal([(0L, 1L << 20)], map);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_restore_under_a_new_name_gets_its_own_files_a_new_uuid_and_a_definition_pointing_at_them()
    {
        using var tree = new RestoredTree();

        var result = await tree.RestoreAsync(ChainFixtures.Full(), asName: "win11-copy");

        var uuid = result.Position.DomainUuid;
        Assert.NotEqual(ChainFixtures.DomainUuid, uuid);
        Assert.True(File.Exists(tree.Disk("vda", name: "win11-copy")));
        Assert.True(File.Exists(tree.Nvram("win11-copy")));
        Assert.True(File.Exists(Path.Combine(tree.TpmDirectory(uuid), "tpm2-00.permall")));
        Assert.False(File.Exists(tree.Disk("vda")));
        var xml = await File.ReadAllTextAsync(tree.Definition("win11-copy"));
        Assert.Contains("<name>win11-copy</name>", xml);
        Assert.Contains($"<uuid>{uuid}</uuid>", xml);
        Assert.Contains("<source file=\"/var/lib/libvirt/images/win11-copy-vda.img\" />", xml);
        Assert.Contains(">/var/lib/libvirt/qemu/nvram/win11-copy_VARS.fd</nvram>", xml);
    }

    internal static async Task<byte[]> ReadImageAsync(string path, DiskFormat format, int length)
    {
        if (format == DiskFormat.Raw)
        {
            return await File.ReadAllBytesAsync(path);
        }

        var raw = path + ".raw";
        await Tool.RunAsync("qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw);
        try
        {
            // qcow2 rounds the virtual size up to 512 bytes: the padding must read as zeros.
            var bytes = await File.ReadAllBytesAsync(raw);
            Assert.False(bytes.AsSpan(length).ContainsAnyExcept((byte)0), "the qcow2 padding after the virtual size is not zero");
            return bytes[..length];
        }
        finally
        {
            File.Delete(raw);
        }
    }

    internal static async Task<string> StatAsync(string path) => (await Tool.RunAsync("stat", "-c", "%U:%G %a", path)).Trim();
}
