namespace VirtBackup.IntegrationTests.Libvirt;

/// <summary>Hermetic: parses XML text only, no VM.</summary>
public class DomainXmlTests
{
    private const string Uuid = "04cb9fd6-8973-4a29-839c-57631901e585";

    /// <summary>Trimmed from the live XML of a lab VM on libvirt 9.0.</summary>
    private const string LabLiveXml = $"""
        <domain type='qemu' id='3' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>vbt-manual1</name>
          <uuid>{Uuid}</uuid>
          <os>
            <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
            <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
            <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/vbt-manual1_VARS.fd</nvram>
            <boot dev='hd'/>
          </os>
          <devices>
            <emulator>/usr/bin/qemu-system-x86_64</emulator>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/vbt-manual1-vda.qcow2' index='2'/>
              <backingStore/>
              <target dev='vda' bus='virtio'/>
              <alias name='virtio-disk0'/>
            </disk>
            <tpm model='tpm-crb'>
              <backend type='emulator' version='2.0'/>
              <alias name='tpm0'/>
            </tpm>
          </devices>
          <qemu:override>
            <qemu:device alias='virtio-disk0'><qemu:frontend><qemu:property name='share-rw' type='bool' value='true'/></qemu:frontend></qemu:device>
          </qemu:override>
        </domain>
        """;

    [Fact]
    public void The_live_xml_of_a_lab_vm_gives_its_disk_firmware_and_tpm()
    {
        var xml = DomainXml.Parse(LabLiveXml);

        Assert.Equal(("vbt-manual1", Uuid), (xml.Name, xml.Uuid));
        var disk = Assert.Single(xml.Disks);
        Assert.Equal(
            new DomainDisk(DiskDevice.Disk, DiskSourceType.File, "vda", "virtio", "qcow2",
                "/var/lib/libvirt/images/vbt-manual1-vda.qcow2", null, null, false, false, "virtio-disk0"),
            disk);
        Assert.Same(disk, xml.FindDisk("vda"));
        Assert.Null(xml.FindDisk("vdb"));
        Assert.Equal(new DomainLoader("/usr/share/OVMF/OVMF_CODE_4M.fd", "pflash", true, false), xml.Loader);
        Assert.Equal("/var/lib/libvirt/qemu/nvram/vbt-manual1_VARS.fd", xml.NvramPath);
        Assert.Equal("/usr/share/OVMF/OVMF_VARS_4M.fd", xml.Nvram!.Template);
        Assert.Equal(new DomainTpm("tpm-crb", TpmBackendType.Emulator, "2.0", null, false, null, null, null, "tpm0"), xml.Tpm);
        Assert.Equal($"/var/lib/libvirt/swtpm/{Uuid}/tpm2", xml.TpmStateDirectory);
    }

    [Fact]
    public void Block_network_volume_cdrom_and_readonly_shareable_disks_are_told_apart()
    {
        var xml = DomainXml.Parse(Domain("""
            <disk type='block' device='disk'>
              <driver name='qemu' type='raw'/><source dev='/dev/vg0/data'/><target dev='sda' bus='scsi'/><shareable/>
            </disk>
            <disk type='network' device='disk'>
              <driver name='qemu' type='raw'/>
              <source protocol='rbd' name='pool/image'><host name='ceph1' port='6789'/></source>
              <target dev='vdb' bus='virtio'/>
            </disk>
            <disk type='volume' device='disk'>
              <driver name='qemu' type='qcow2'/><source pool='default' volume='data.qcow2'/><target dev='vdc' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <driver name='qemu' type='raw'/><target dev='sdb' bus='sata'/><readonly/>
            </disk>
            <disk type='file' device='floppy'>
              <source file='/srv/boot.img'/><target dev='fda' bus='fdc'/>
            </disk>
            """));

        Assert.Equal(
            [
                new DomainDisk(DiskDevice.Disk, DiskSourceType.Block, "sda", "scsi", "raw", "/dev/vg0/data", null, null, false, true, null),
                new DomainDisk(DiskDevice.Disk, DiskSourceType.Network, "vdb", "virtio", "raw", null, "rbd", "pool/image", false, false, null),
                new DomainDisk(DiskDevice.Disk, DiskSourceType.Volume, "vdc", "virtio", "qcow2", null, null, "default/data.qcow2", false, false, null),
                new DomainDisk(DiskDevice.Cdrom, DiskSourceType.File, "sdb", "sata", "raw", null, null, null, true, false, null),
                new DomainDisk(DiskDevice.Floppy, DiskSourceType.File, "fda", "fdc", null, "/srv/boot.img", null, null, false, false, null),
            ],
            xml.Disks);
        Assert.Null(xml.Loader);
        Assert.Null(xml.Nvram);
        Assert.Null(xml.Tpm);
        Assert.Null(xml.TpmStateDirectory);
    }

    [Fact]
    public void An_nvram_with_a_source_element_gives_the_source_file()
    {
        var xml = DomainXml.Parse(Domain(
            "",
            """
            <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
            <nvram type='file' template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'><source file='/srv/nvram/web_VARS.fd'/></nvram>
            """));

        Assert.Equal(new DomainLoader("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "pflash", true, true), xml.Loader);
        Assert.Equal(new DomainNvram("/srv/nvram/web_VARS.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", "file"), xml.Nvram);
    }

    [Fact]
    public void A_network_nvram_has_no_path()
    {
        var xml = DomainXml.Parse(Domain("", """
            <nvram type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:iscsi-nopool/0'><host name='example.com' port='6000'/></source></nvram>
            """));

        Assert.Equal(new DomainNvram(null, null, "network"), xml.Nvram);
    }

    [Fact]
    public void An_encrypted_tpm_1_2_keeps_its_state_under_tpm1_2()
    {
        var xml = DomainXml.Parse(Domain("""
            <tpm model='tpm-tis'>
              <backend type='emulator' version='1.2' persistent_state='yes'>
                <encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/>
              </backend>
            </tpm>
            """));

        Assert.Equal(
            new DomainTpm("tpm-tis", TpmBackendType.Emulator, "1.2", "6dd3e4a5-1d76-44ce-961f-f119f5aad935", true, null, null, null, null),
            xml.Tpm);
        Assert.Equal($"/var/lib/libvirt/swtpm/{Uuid}/tpm1.2", xml.TpmStateDirectory);
    }

    [Fact]
    public void A_tpm_without_a_version_is_libvirt_s_default_2_0_and_a_custom_state_dir_wins()
    {
        var defaulted = DomainXml.Parse(Domain("<tpm model='tpm-crb'><backend type='emulator'/></tpm>"));
        var custom = DomainXml.Parse(Domain("""
            <tpm model='tpm-crb'><backend type='emulator' version='2.0'><source type='dir' path='/srv/tpm/web'/></backend></tpm>
            """));
        var customFile = DomainXml.Parse(Domain("""
            <tpm model='tpm-crb'><backend type='emulator' version='2.0'><source type='file' path='/srv/tpm/web.permall'/></backend></tpm>
            """));

        Assert.Equal("2.0", defaulted.Tpm!.Version);
        Assert.Equal($"/var/lib/libvirt/swtpm/{Uuid}/tpm2", defaulted.TpmStateDirectory);
        Assert.Equal(("dir", "/srv/tpm/web"), (custom.Tpm!.StateSourceType, custom.Tpm.StateSourcePath));
        Assert.Equal("/srv/tpm/web", custom.TpmStateDirectory);
        Assert.Equal(("file", "/srv/tpm/web.permall"), (customFile.Tpm!.StateSourceType, customFile.Tpm.StateSourcePath));
        Assert.Null(customFile.TpmStateDirectory);
    }

    [Fact]
    public void Passthrough_and_external_tpms_have_no_swtpm_state_directory()
    {
        var passthrough = DomainXml.Parse(Domain("""
            <tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>
            """));
        var external = DomainXml.Parse(Domain("""
            <tpm model='tpm-crb'><backend type='external'><source type='unix' mode='connect' path='/run/swtpm.sock'/></backend></tpm>
            """));

        Assert.Equal((TpmBackendType.Passthrough, "/dev/tpm0"), (passthrough.Tpm!.Backend, passthrough.Tpm.DevicePath));
        Assert.Null(passthrough.TpmStateDirectory);
        Assert.Equal((TpmBackendType.External, "/run/swtpm.sock"), (external.Tpm!.Backend, external.Tpm.DevicePath));
        Assert.Null(external.Tpm.StateSourcePath);
        Assert.Null(external.TpmStateDirectory);
    }

    [Theory]
    [InlineData("<domain><name>x</name>", "The domain XML is not well-formed")]
    [InlineData("<domaincheckpoint><name>x</name></domaincheckpoint>", "Expected a <domain> document, found <domaincheckpoint>.")]
    [InlineData("<domain><uuid>" + Uuid + "</uuid></domain>", "The domain XML has no <name>.")]
    [InlineData("<domain><name>web</name></domain>", "The domain XML of 'web' has no <uuid>.")]
    [InlineData("<domain><name>web</name><uuid>" + Uuid + "</uuid><devices><disk type='file'/></devices></domain>",
        "A disk of domain 'web' has no <target dev=...>.")]
    public void Xml_that_is_not_a_usable_domain_is_invalid_data(string xml, string message)
    {
        var error = Assert.Throws<InvalidDataException>(() => DomainXml.Parse(xml));

        Assert.StartsWith(message, error.Message);
    }

    private static string Domain(string devices, string os = "") =>
        $"<domain type='kvm'><name>web</name><uuid>{Uuid.ToUpperInvariant()}</uuid><os>{os}</os><devices>{devices}</devices></domain>";
}
