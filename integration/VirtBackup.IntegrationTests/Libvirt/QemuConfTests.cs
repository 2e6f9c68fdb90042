namespace VirtBackup.IntegrationTests.Libvirt;

/// <summary>Hermetic: parses qemu.conf text only.</summary>
public class QemuConfTests
{
    [Fact]
    public void A_qemu_conf_with_only_comments_gives_tss()
    {
        var conf = QemuConf.Parse("""
            # User for the swtpm TPM Emulator
            #
            #swtpm_user = "tss"
            #swtpm_group = "tss"
            """);

        Assert.Equal(new QemuConf("tss", "tss"), conf);
        Assert.Equal(QemuConf.Defaults, conf);
    }

    [Fact]
    public void Swtpm_user_and_group_are_read_with_trailing_comments_and_other_settings_around()
    {
        var conf = QemuConf.Parse("""
            user = "libvirt-qemu"
            cgroup_device_acl = [
                "/dev/null", "/dev/full", "/dev/zero",
            ]
              swtpm_user   =   "swtpm"   # a dedicated user
            swtpm_group="swtpm#1"
            swtpm_user = "root" is not a valid line
            """);

        Assert.Equal(new QemuConf("swtpm", "swtpm#1") { User = "libvirt-qemu" }, conf);
    }

    [Fact]
    public void Qemu_s_user_group_and_dynamic_ownership_are_read_and_default_to_unset_and_on()
    {
        var conf = QemuConf.Parse("""
            user = "+107"
            group = "kvm"   # QEMU's group
            dynamic_ownership = 0
            """);

        Assert.Equal(("+107", "kvm", false), (conf.User, conf.Group, conf.DynamicOwnership));
        Assert.Equal(((string?)null, (string?)null, true), (QemuConf.Defaults.User, QemuConf.Defaults.Group, QemuConf.Defaults.DynamicOwnership));
        Assert.True(QemuConf.Parse("dynamic_ownership = 1").DynamicOwnership);
    }

    [Fact]
    public void This_machine_s_qemu_conf_loads_and_a_missing_file_means_the_defaults()
    {
        Assert.Equal(QemuConf.Defaults, QemuConf.Load("/nonexistent/qemu.conf"));
        if (File.Exists(QemuConf.DefaultPath))
        {
            Assert.Equal(QemuConf.Parse(File.ReadAllText(QemuConf.DefaultPath)), QemuConf.Load());
        }
    }
}
