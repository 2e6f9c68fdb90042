using VirtBackup.Core.Recovery.Boot;

namespace VirtBackup.Tests.Recovery.Boot;

public sealed class BootRecordTests : IDisposable
{
    private readonly string _run = Directory.CreateTempSubdirectory("vbt-bootrecord-").FullName;

    [Fact]
    public void A_saved_record_loads_with_its_owner_phase_and_serial_log_and_one_without_them_reads_as_a_finished_boot()
    {
        var record = new BootRecord { Name = "w-live", Uuid = "11111111-2222-3333-4444-555555555555", RunDirectory = _run, SocketPath = Path.Combine(_run, "nbd.sock") };
        record.Overlays.Add("/srv/images/w-live-vda.qcow2");
        record.SerialLogPath = "/srv/images/w-live-serial.log";
        record.Owner = new BootOwner(4242, 987654321);
        record.Phase = BootPhase.Pulling;
        record.ServePid = 4343;
        record.Save();

        var loaded = BootRecord.Load(_run)!;

        Assert.Equal((BootPhase.Pulling, new BootOwner(4242, 987654321), "/srv/images/w-live-serial.log", 4343, "/srv/images/w-live-vda.qcow2"),
            (loaded.Phase, loaded.Owner, loaded.SerialLogPath, loaded.ServePid, Assert.Single(loaded.Overlays)));
        File.WriteAllText(BootLayout.RecordPathFor(_run), """
            {"name":"old","uuid":"u","runDirectory":"r","socket":"s","servePid":7,"overlays":[],"nvram":null,"swtpmDirectory":null,"defined":true}
            """);
        var old = BootRecord.Load(_run)!;
        Assert.Equal((BootPhase.Booted, new BootOwner(0, 0), (string?)null), (old.Phase, old.Owner, old.SerialLogPath));
    }

    [Fact]
    public void A_boot_being_made_is_stale_once_its_owner_is_gone_and_a_finished_boot_once_nothing_serves_its_socket()
    {
        var record = new BootRecord { Name = "w", Uuid = "u", RunDirectory = _run, SocketPath = Path.Combine(_run, "nbd.sock") };
        record.Owner = BootOwner.Current();

        Assert.True(record.Owner.IsAlive);
        Assert.Null(StaleBoots.Reason(record));
        record.Owner = record.Owner with { StartTicks = record.Owner.StartTicks + 1 };
        Assert.False(record.Owner.IsAlive);
        Assert.Equal($"the virtbackup process that made it (pid {Environment.ProcessId}) is gone while it was booting or checking it", StaleBoots.Reason(record));
        record.Phase = BootPhase.Pulling;
        Assert.Equal($"the virtbackup process that made it (pid {Environment.ProcessId}) is gone while it was pulling its data (live restore)", StaleBoots.Reason(record));

        record.Phase = BootPhase.Booted;
        record.ServePid = 0;
        Assert.Equal("its server (pid 0) is gone, so its domain cannot read the backup", StaleBoots.Reason(record));
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(record.SocketPath));
        listener.Listen();
        Assert.Null(StaleBoots.Reason(record));
    }

    [Theory]
    [InlineData("<backingStore type='network'><format type='raw'/><source protocol='nbd' name='vda'/></backingStore>", true)]
    [InlineData("<backingStore/>", false)]
    [InlineData("", false)]
    public void A_disk_is_still_backed_only_while_its_live_definition_gives_it_a_backing_source(string backing, bool backed)
    {
        var xml = $"<domain><devices><disk type='file'><source file='/i/a.qcow2'/>{backing}<target dev='vda'/></disk>"
            + "<disk type='file'><source file='/i/b.qcow2'/><backingStore type='file'><source file='/i/base'/></backingStore><target dev='vdb'/></disk></devices></domain>";

        Assert.Equal(backed, LiveRestoreRun.IsBacked(xml, "vda"));
        Assert.True(LiveRestoreRun.IsBacked(xml, "vdb"));
    }

    public void Dispose() => Directory.Delete(_run, recursive: true);
}
