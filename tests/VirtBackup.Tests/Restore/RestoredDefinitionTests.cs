using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace VirtBackup.Tests.Restore;

public class RestoredDefinitionTests
{
    private static readonly Dictionary<string, (string Path, DiskFormat Format)> Disks = new()
    {
        ["vda"] = ("/var/lib/libvirt/images/copy-vda.qcow2", DiskFormat.Qcow2),
        ["vdb"] = ("/var/lib/libvirt/images/copy-vdb.img", DiskFormat.Raw),
    };

    private static XElement Rewrite(bool newIdentity, string xml = ChainFixtures.DomainXml) => XElement.Parse(RestoredDefinition.Rewrite(
        xml,
        new RestoredIdentity("copy", "11111111-2222-3333-4444-555555555555", Disks, "/var/lib/libvirt/qemu/nvram/copy_VARS.fd", newIdentity),
        new HashSet<string> { "sdc" }));

    [Fact]
    public void The_definition_takes_the_new_name_and_uuid_and_drops_the_runtime_id()
    {
        var domain = Rewrite(newIdentity: true);

        Assert.Equal("copy", domain.Element("name")!.Value);
        Assert.Equal("11111111-2222-3333-4444-555555555555", domain.Element("uuid")!.Value);
        Assert.Null(domain.Attribute("id"));
        Assert.Empty(domain.Descendants("alias"));
    }

    [Fact]
    public void Every_restored_disk_is_a_file_at_its_restored_path_in_its_restored_format()
    {
        var disks = Rewrite(newIdentity: true).Element("devices")!.Elements("disk")
            .Select(d => ((string?)d.Attribute("type"), (string?)d.Element("driver")!.Attribute("type"), (string?)d.Element("source")!.Attribute("file"),
                d.Element("source")!.Attributes().Count(), d.Element("backingStore") is null))
            .ToList();

        Assert.Equal(
            [
                ("file", "qcow2", "/var/lib/libvirt/images/copy-vda.qcow2", 1, true),
                ("file", "raw", "/var/lib/libvirt/images/copy-vdb.img", 1, true),
            ],
            disks);
    }

    [Fact]
    public void A_copy_under_a_new_name_drops_excluded_disks_but_a_restore_in_place_keeps_them()
    {
        Assert.DoesNotContain("sdc", Rewrite(newIdentity: true).Descendants("target").Select(t => (string?)t.Attribute("dev")));
        Assert.Contains("/dev/vg0/scratch", Rewrite(newIdentity: false).Descendants("source").Select(s => (string?)s.Attribute("dev")));
    }

    [Fact]
    public void A_copy_under_a_new_name_gets_a_new_mac_address_and_no_live_vnet_target()
    {
        var nic = Rewrite(newIdentity: true).Element("devices")!.Element("interface")!;
        var inPlace = Rewrite(newIdentity: false).Element("devices")!.Element("interface")!;

        var mac = (string)nic.Element("mac")!.Attribute("address")!;
        Assert.Matches(new Regex("^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$"), mac);
        Assert.NotEqual("52:54:00:12:34:56", mac);
        Assert.Single(nic.Elements("mac"));
        Assert.Null(nic.Element("target"));
        Assert.Equal("52:54:00:12:34:56", (string)inPlace.Element("mac")!.Attribute("address")!);
    }

    [Fact]
    public void The_nvram_points_at_the_restored_file_and_keeps_its_template()
    {
        var nvram = Rewrite(newIdentity: true).Element("os")!.Element("nvram")!;

        Assert.Equal("/var/lib/libvirt/qemu/nvram/copy_VARS.fd", nvram.Value);
        Assert.Equal("/usr/share/OVMF/OVMF_VARS_4M.fd", (string?)nvram.Attribute("template"));
    }

    [Fact]
    public void A_custom_tpm_state_location_is_dropped_so_libvirt_uses_the_restored_one()
    {
        var xml = ChainFixtures.DomainXml.Replace(
            "<backend type='emulator' version='2.0'/>",
            "<backend type='emulator' version='2.0'><source type='dir' path='/srv/tpm'/></backend>");

        Assert.Empty(Rewrite(newIdentity: true, xml).Descendants("tpm").Descendants("source"));
    }

    [Theory]
    [InlineData("<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><domain><name>&x;</name></domain>")]
    [InlineData("<network><name>x</name></network>")]
    [InlineData("<domain><name>x</domain>")]
    public void Xml_that_is_no_plain_domain_document_is_refused(string xml)
    {
        Assert.Throws<RestoreRefusedException>(() => Rewrite(newIdentity: true, xml));
    }
}
