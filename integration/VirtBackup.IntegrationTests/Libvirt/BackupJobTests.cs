using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;

namespace VirtBackup.IntegrationTests.Libvirt;

[Collection(LabCollection.Name)]
public class BackupJobTests(ITestOutputHelper output)
{
    [Fact(Timeout = 60_000)]
    public async Task A_pull_mode_backup_with_a_checkpoint_starts_and_aborts_cleanly()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);
        Assert.Equal(DomainJobType.None, domain.GetJobStats().Type);
        Assert.Equal(DomainJobType.None, domain.GetJobInfo().Type);

        domain.BackupBegin(LabBackupXml.Pull(vm), LabBackupXml.Checkpoint(vm, "full1"));

        Assert.Equal("socket", await FileTypeAsync(vm.SocketPath()));
        Assert.True(File.Exists(vm.ScratchPath("vda")));
        var stats = domain.GetJobStats();
        output.WriteLine(string.Join(", ", stats.Parameters.Select(p => $"{p.Key}={p.Value} ({p.Value.GetType().Name})")));
        Assert.Equal((DomainJobType.Unbounded, DomainJobOperation.Backup, true), (stats.Type, stats.Operation, stats.IsBackupActive));
        Assert.Equal(64UL << 20, stats.Parameters["disk_temp_total"]);
        Assert.Equal(DomainJobType.Unbounded, domain.GetJobInfo().Type);
        var disk = XElement.Parse(domain.BackupGetXml()).Element("disks")!.Element("disk")!;
        Assert.Equal(("vda", "full", "vda"), ((string?)disk.Attribute("name"), (string?)disk.Attribute("backupmode"), (string?)disk.Attribute("exportname")));
        Assert.Equal(["full1"], domain.ListCheckpoints());

        domain.AbortJob();

        // libvirt tears the aborted job down after AbortJob returns (tens of ms, more under load).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (domain.GetJobStats().Type != DomainJobType.None && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(DomainJobType.None, domain.GetJobStats().Type);
        var completed = domain.GetJobStats(DomainJobStatsFlags.Completed);
        Assert.Equal((DomainJobType.Completed, DomainJobOperation.Backup), (completed.Type, completed.Operation));
        Assert.Equal("Operation canceled", completed.ErrorMessage);
        Assert.False(File.Exists(vm.SocketPath()));
        Assert.False(File.Exists(vm.ScratchPath("vda")));
        Assert.Equal(["full1"], domain.ListCheckpoints());
        Assert.Equal(["full1"], Bitmaps(domain, vm.DiskPath("vda")));
        Assert.Throws<LibvirtException>(domain.BackupGetXml);

        domain.CheckpointDelete("full1");

        Assert.Empty(domain.ListCheckpoints());
        Assert.Empty(Bitmaps(domain, vm.DiskPath("vda")));
        Assert.Equal(DomainState.Running, domain.GetState().State);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_checkpoint_deleted_as_metadata_only_keeps_its_bitmap_and_can_be_redefined()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);
        using (var created = domain.CheckpointCreateXml(LabBackupXml.Checkpoint(vm, "c1")))
        {
            Assert.Equal("c1", created.Name);
        }

        var xml = domain.CheckpointGetXml("c1", CheckpointXmlFlags.NoDomain);
        domain.CheckpointDelete("c1", CheckpointDeleteFlags.MetadataOnly);

        Assert.Empty(domain.ListCheckpoints());
        Assert.Equal(["c1"], Bitmaps(domain, vm.DiskPath("vdb")));
        var clash = Assert.Throws<LibvirtException>(() => domain.CheckpointCreateXml(LabBackupXml.Checkpoint(vm, "c1")));
        Assert.Equal(LibvirtErrorCode.InternalError, clash.Code);
        Assert.EndsWith("Bitmap already exists: c1", clash.LibvirtMessage);

        using (domain.CheckpointCreateXml(xml, CheckpointCreateFlags.Redefine | CheckpointCreateFlags.RedefineValidate))
        {
        }

        Assert.Equal(["c1"], domain.ListCheckpoints());
        domain.CheckpointDelete("c1");
        Assert.Empty(Bitmaps(domain, vm.DiskPath("vda")));
        Assert.Empty(Bitmaps(domain, vm.DiskPath("vdb")));
        var missing = Assert.Throws<CheckpointNotFoundException>(() => domain.CheckpointLookupByName("c1"));
        Assert.Equal("Domain checkpoint not found: no domain checkpoint with matching name 'c1'", missing.LibvirtMessage);
        var stale = Assert.Throws<LibvirtException>(() =>
            domain.CheckpointCreateXml(xml, CheckpointCreateFlags.Redefine | CheckpointCreateFlags.RedefineValidate));
        Assert.Equal(LibvirtErrorCode.CheckpointInconsistent, stale.Code);
        Assert.Equal("checkpoint inconsistent: missing or broken bitmap 'c1' for disk 'vda'", stale.LibvirtMessage);
    }

    [Fact(Timeout = 90_000)]
    public async Task Suspend_backup_begin_with_a_checkpoint_and_resume_take_about_a_tenth_of_a_second()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);
        var backupXml = LabBackupXml.Pull(vm);

        for (var round = 1; round <= 3; round++)
        {
            var clock = Stopwatch.StartNew();
            domain.Suspend();
            var suspended = clock.Elapsed;
            domain.BackupBegin(backupXml, LabBackupXml.Checkpoint(vm, $"t{round}"));
            var begun = clock.Elapsed;
            domain.Resume();
            var resumed = clock.Elapsed;
            output.WriteLine($"round {round}: suspend {suspended.TotalMilliseconds:F1} ms, backupBegin {(begun - suspended).TotalMilliseconds:F1} ms, " +
                             $"resume {(resumed - begun).TotalMilliseconds:F1} ms, paused in total {resumed.TotalMilliseconds:F1} ms");

            Assert.Equal(DomainState.Running, domain.GetState().State);
            domain.AbortJob();

            // libvirt finishes tearing the aborted job down after AbortJob returns; a Suspend right
            // away waits ~60 ms for it, which is not what a capture pays.
            await Task.Delay(500);
        }

        Assert.Equal(["t1", "t2", "t3"], domain.ListCheckpoints());
    }

    /// <summary>The persistent dirty bitmaps QEMU holds for the qcow2 node of <paramref name="image"/> (QMP).</summary>
    private static string[] Bitmaps(Domain domain, string image)
    {
        using var nodes = JsonDocument.Parse(domain.QemuMonitorCommand("""{"execute":"query-named-block-nodes","arguments":{"flat":true}}"""));
        var node = nodes.RootElement.GetProperty("return").EnumerateArray()
            .Single(n => n.GetProperty("drv").GetString() == "qcow2" && n.GetProperty("file").GetString() == image);
        return node.TryGetProperty("dirty-bitmaps", out var bitmaps)
            ? bitmaps.EnumerateArray().Select(b => b.GetProperty("name").GetString()!).Order().ToArray()
            : [];
    }

    private static async Task<string> FileTypeAsync(string path) => (await LabHost.RunAsync("stat", ["-c", "%F", path])).Trim();
}
