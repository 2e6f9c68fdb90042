using VirtBackup.Core.Recovery.Boot;

namespace VirtBackup.Tests.Recovery.Boot;

public sealed class BootDefinitionTests
{
    private const string Xml = """
        <domain type='kvm' id='7'>
          <name>win11</name>
          <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
          <os firmware='efi'><type>hvm</type><loader>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/win11_VARS.fd</nvram></os>
          <devices>
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/win11.qcow2'/><target dev='vda' bus='virtio'/></disk>
            <interface type='network'><mac address='52:54:00:11:22:33'/><source network='default'/></interface>
            <serial type='file'><source path='/var/log/win11-console.log'/><target port='0'/></serial>
            <console type='pty'><target type='serial' port='0'/></console>
            <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
          </devices>
        </domain>
        """;

    private static BootState State() =>
        new(StreamFixtures.Manifest(StreamFixtures.Options(Compression.Zstd), [new SyntheticDisk("vda", new byte[4096], [])]), Xml, [1, 2], [("tpm2-00.permall", [3])]);

    [Fact]
    public void A_booted_disk_is_a_qcow2_overlay_backed_by_its_export_on_the_socket_and_pauses_on_errors_and_interfaces_are_gone()
    {
        var layout = new BootLayout("w-boot", "11111111-2222-3333-4444-555555555555", "/srv/images", "/run/vbt");

        var xml = BootDefinition.Build(State(), layout, ["vda"], new BootIsolation(KeepNetwork: false));

        Assert.Contains("<name>w-boot</name>", xml);
        Assert.Contains("<uuid>11111111-2222-3333-4444-555555555555</uuid>", xml);
        Assert.Contains("""
            <driver name="qemu" type="qcow2" error_policy="stop" rerror_policy="stop" />
                  <source file="/srv/images/w-boot-vda.overlay.qcow2" />
                  <backingStore type="network">
                    <format type="raw" />
                    <source protocol="nbd" name="vda">
                      <host transport="unix" socket="/run/vbt/boot-w-boot/nbd.sock" />
                    </source>
                  </backingStore>
            """.ReplaceLineEndings("\n"), xml.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("<interface", xml);
        Assert.Contains("<serial type=\"file\">\n      <source path=\"/run/vbt/boot-w-boot/serial.log\" />", xml.ReplaceLineEndings("\n"));
        Assert.Contains("<nvram>/var/lib/libvirt/qemu/nvram/w-boot_VARS.fd</nvram>", xml);
        Assert.False(BootDefinition.HasAgentChannel(xml));
    }

    [Fact]
    public void A_live_restore_boots_from_images_named_as_restore_names_them_and_its_final_definition_has_plain_local_disks()
    {
        var layout = new BootLayout("w-live", "11111111-2222-3333-4444-555555555555", "/srv/images", "/run/vbt", liveRestore: true);

        var served = BootDefinition.Build(State(), layout, ["vda"], new BootIsolation(KeepNetwork: false));
        var final = BootDefinition.Build(State(), layout, ["vda"], new BootIsolation(KeepNetwork: false), served: false);

        Assert.Contains("<source file=\"/srv/images/w-live-vda.qcow2\" />\n      <backingStore type=\"network\">", served.ReplaceLineEndings("\n"));
        Assert.Contains("""
            <disk type="file" device="disk">
                  <driver name="qemu" type="qcow2" />
                  <source file="/srv/images/w-live-vda.qcow2" />
                  <target dev="vda" bus="virtio" />
                </disk>
            """.ReplaceLineEndings("\n"), final.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("backingStore", final);
        Assert.Contains("<serial type=\"file\">\n      <source path=\"/srv/images/w-live-serial.log\" />", final.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("<interface", final);
    }

    [Fact]
    public void Network_keep_keeps_the_interface_with_a_new_mac_and_a_throwaway_gets_one_serial_log_a_vnc_display_and_video()
    {
        var layout = new BootLayout("vbverify-0a1b2c3d", "11111111-2222-3333-4444-555555555555", "/run/vbt/boot-vbverify-0a1b2c3d", "/run/vbt");

        var kept = BootDefinition.Build(State(), layout, ["vda"], new BootIsolation(KeepNetwork: true));
        var throwaway = BootDefinition.Build(State(), layout, ["vda"], new BootIsolation(false, "/run/vbt/x/serial.log", EnsureDisplay: true));

        Assert.Contains("<interface type=\"network\">", kept);
        Assert.DoesNotContain("52:54:00:11:22:33", kept);
        Assert.Single(throwaway.Split("<serial ")[1..]);
        Assert.Contains("<serial type=\"file\">\n      <source path=\"/run/vbt/x/serial.log\" />", throwaway.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("<console", throwaway);
        Assert.Contains("<graphics type=\"vnc\" autoport=\"yes\" listen=\"127.0.0.1\" />", throwaway);
        Assert.Contains("<video>\n      <model type=\"vga\" />\n    </video>", throwaway.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task The_boot_state_of_a_stream_file_is_its_domain_xml_nvram_and_tpm_files_read_by_seeking()
    {
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd);
        var path = Path.Combine(Directory.CreateTempSubdirectory("vbt-bootstate-").FullName, "full.tar");
        await File.WriteAllBytesAsync(path, backup.Stream);
        try
        {
            var state = BootState.Read(path);

            Assert.Equal(backup.DomainXml, state.DomainXml);
            Assert.Equal(backup.Nvram, state.Nvram);
            Assert.Equal(backup.TpmFiles.Select(f => f.Path), state.TpmFiles.Select(f => f.RelativePath));
            Assert.Equal(backup.TpmFiles.Select(f => f.Content), state.TpmFiles.Select(f => f.Content));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
