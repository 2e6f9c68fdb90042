using VirtBackup.Core.Config;

namespace VirtBackup.Tests.Config;

public class ConnectionUriTests
{
    private static readonly ConfigFile WithConnect =
        ConfigFile.Parse(["# comment", "", "connect = qemu+ssh://root@host/system"], "test.conf");

    [Fact]
    public void The_command_line_wins_over_environment_and_config() =>
        Assert.Equal("qemu:///session", ConnectionUri.Resolve("qemu:///session", Env(("VIRTBACKUP_CONNECT", "x")), WithConnect));

    [Fact]
    public void VIRTBACKUP_CONNECT_wins_over_LIBVIRT_DEFAULT_URI() =>
        Assert.Equal("a:///", ConnectionUri.Resolve(null, Env(("VIRTBACKUP_CONNECT", "a:///"), ("LIBVIRT_DEFAULT_URI", "b:///")), WithConnect));

    [Fact]
    public void LIBVIRT_DEFAULT_URI_is_used_when_ours_is_unset() =>
        Assert.Equal("b:///", ConnectionUri.Resolve(null, Env(("LIBVIRT_DEFAULT_URI", "b:///")), WithConnect));

    [Fact]
    public void The_config_file_gives_a_uri_without_a_colon_on_the_command_line() =>
        Assert.Equal("qemu+ssh://root@host/system", ConnectionUri.Resolve(null, Env(), WithConnect));

    [Fact]
    public void Without_anything_the_system_qemu_uri_is_used() =>
        Assert.Equal("qemu:///system", ConnectionUri.Resolve(null, Env(), ConfigFile.Empty));

    [Fact]
    public void A_config_line_without_an_equals_sign_is_refused_with_its_line_number()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigFile.Parse(["connect = a", "oops"], "/etc/x.conf"));
        Assert.Equal("/etc/x.conf:2: expected 'key = value', got 'oops'", e.Message);
    }

    private static Func<string, string?> Env(params (string Key, string Value)[] pairs) =>
        key => pairs.FirstOrDefault(p => p.Key == key).Value;
}
