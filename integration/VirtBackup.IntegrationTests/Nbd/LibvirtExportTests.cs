using System.Security.Cryptography;
using System.Text.Json;
using VirtBackup.Core.Nbd;
using VirtBackup.IntegrationTests.Libvirt;

namespace VirtBackup.IntegrationTests.Nbd;

/// <summary>Our NBD client against the export of a real libvirt pull-mode backup job, checked against libnbd's tools.</summary>
[Collection(LabCollection.Name)]
public class LibvirtExportTests
{
    [Fact(Timeout = 120_000)]
    public async Task Extents_and_bytes_of_a_full_backup_export_equal_what_nbdinfo_and_nbdcopy_report()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(vm.Name);
        domain.BackupBegin(LabBackupXml.Pull(vm), LabBackupXml.Checkpoint(vm, "full1"));
        try
        {
            var uri = $"nbd+unix:///vda?socket={vm.SocketPath()}";
            await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(uri), new NbdConnectOptions { MetaContexts = ["base:allocation"] });

            var ours = await ExtentsAsync(client, "base:allocation");
            var theirs = await NbdinfoMapAsync(uri, "base:allocation");
            Assert.Equal(theirs, ours);
            Assert.Equal((64L << 20, 32U << 20, true), (client.ExportSize, client.MaximumBlockSize, client.ReadOnly));

            var copy = Path.Combine(Path.GetTempPath(), $"{vm.Name}-nbdcopy.raw");
            try
            {
                await LabHost.RunAsync("nbdcopy", [uri, copy]);
                var bytes = new byte[client.ExportSize];
                await client.ReadRangeAsync(0, bytes.Length, (offset, data) =>
                {
                    data.CopyTo(bytes.AsMemory((int)offset));
                    return ValueTask.CompletedTask;
                });
                Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(copy)), SHA256.HashData(bytes));
            }
            finally
            {
                File.Delete(copy);
            }
        }
        finally
        {
            domain.AbortJob();
            domain.CheckpointDelete("full1");
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task The_dirty_bitmap_of_an_incremental_export_equals_what_nbdinfo_reports_and_holds_exactly_the_writes()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(vm.Name);
        domain.CheckpointCreateXml(LabBackupXml.Checkpoint(vm, "c1")).Dispose();
        await vm.InjectWriteAsync("vda", "8M", "1M", "0x55");
        await vm.InjectWriteAsync("vda", "48M", "128K", "0x66");
        domain.BackupBegin(LabBackupXml.Pull(vm, incrementalFrom: "c1"), LabBackupXml.Checkpoint(vm, "c2"));
        try
        {
            var uri = $"nbd+unix:///vda?socket={vm.SocketPath()}";
            const string bitmap = "qemu:dirty-bitmap:backup-vda";
            await using var client = await NbdClient.ConnectAsync(NbdUri.Parse(uri), new NbdConnectOptions { MetaContexts = ["base:allocation", bitmap] });

            var ours = await ExtentsAsync(client, bitmap);

            Assert.Equal(await NbdinfoMapAsync(uri, bitmap), ours);
            Assert.Equal([(8L << 20, 1L << 20), (48L << 20, 128L << 10)], ours.Where(e => e.Flags == 1).Select(e => (e.Offset, e.Length)));
        }
        finally
        {
            domain.AbortJob();
            domain.CheckpointDelete("c2");
            domain.CheckpointDelete("c1");
        }
    }

    private static async Task<List<(long Offset, long Length, uint Flags)>> ExtentsAsync(NbdClient client, string context)
    {
        var list = new List<(long, long, uint)>();
        await foreach (var e in client.GetExtentsAsync(context, 0, client.ExportSize))
        {
            list.Add((e.Offset, e.Length, e.Flags));
        }

        return list;
    }

    /// <summary>`nbdinfo --map=CONTEXT --json URI`, adjacent equal extents merged as our client merges them.</summary>
    private static async Task<List<(long Offset, long Length, uint Flags)>> NbdinfoMapAsync(string uri, string context)
    {
        var json = await LabHost.RunAsync("nbdinfo", [$"--map={context}", "--json", uri]);
        var merged = new List<(long Offset, long Length, uint Flags)>();
        foreach (var e in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            var (offset, length, flags) = (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("type").GetUInt32());
            if (merged.Count > 0 && merged[^1].Flags == flags && merged[^1].Offset + merged[^1].Length == offset)
            {
                merged[^1] = (merged[^1].Offset, merged[^1].Length + length, flags);
            }
            else
            {
                merged.Add((offset, length, flags));
            }
        }

        return merged;
    }
}
