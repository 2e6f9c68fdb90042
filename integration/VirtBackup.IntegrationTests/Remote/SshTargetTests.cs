namespace VirtBackup.IntegrationTests.Remote;

public class SshTargetTests
{
    [Fact]
    public void A_libvirt_ssh_uri_gives_user_host_port_key_file_and_no_verify()
    {
        var target = SshTarget.FromLibvirtUri("qemu+ssh://backup@hv1.example.org:2222/system?keyfile=/etc/virtbackup/id%20key&no_verify=1");

        Assert.Equal(new SshTarget("hv1.example.org", "backup", 2222, "/etc/virtbackup/id key", NoVerify: true), target);
        Assert.Equal("backup@hv1.example.org:2222", target.ToString());
    }

    [Fact]
    public void A_uri_without_user_port_or_parameters_leaves_them_to_the_ssh_configuration()
    {
        var target = SshTarget.FromLibvirtUri("qemu+ssh://hv-alias/system");

        Assert.Equal(new SshTarget("hv-alias"), target);
        Assert.Null(target.User);
        Assert.Null(target.Port);
        Assert.Null(target.KeyFile);
        Assert.False(target.NoVerify);
        Assert.Empty(target.Options);
        Assert.Equal(["--", "hv-alias"], [.. target.ConnectionArguments(), "--", target.Host]);
    }

    [Fact]
    public void An_ipv6_host_loses_its_brackets()
    {
        var target = SshTarget.FromLibvirtUri("qemu+ssh://root@[fd00::1]:22/system");

        Assert.Equal(new SshTarget("fd00::1", "root", 22), target);
        Assert.Equal("root@[fd00::1]:22", target.ToString());
    }

    [Fact]
    public void Libvirt_query_parameters_other_than_keyfile_and_no_verify_are_ignored_and_explicit_options_are_kept()
    {
        var target = SshTarget.FromLibvirtUri(
            "qemu+ssh://root@hv1/system?socket=/run/libvirt/libvirt-sock&no_verify=0&keyfile=/k&mode=direct",
            ["-o", "ProxyJump=bastion"]);

        Assert.Equal(new SshTarget("hv1", "root", null, "/k", false, ["-o", "ProxyJump=bastion"]), target);
        Assert.Equal(
            ["-i", "/k", "-o", "ProxyJump=bastion", "-l", "root"],
            target.ConnectionArguments().ToArray());
    }

    [Fact]
    public void No_verify_becomes_strict_host_key_checking_off_and_the_port_goes_last()
    {
        var target = SshTarget.FromLibvirtUri("qemu+libssh2://u@h:2200/system?no_verify=1");

        Assert.Equal(["-o", "StrictHostKeyChecking=no", "-l", "u", "-p", "2200"], target.ConnectionArguments().ToArray());
    }

    [Theory]
    [InlineData("qemu:///system")]
    [InlineData("qemu+tcp://hv1/system")]
    [InlineData("qemu+unix:///system")]
    [InlineData("qemu+ssh:///system")]
    [InlineData("not a uri")]
    public void A_uri_that_does_not_reach_a_host_over_ssh_is_refused(string uri)
    {
        Assert.False(SshTarget.IsSshUri(uri));
        var e = Assert.Throws<FormatException>(() => SshTarget.FromLibvirtUri(uri));
        Assert.StartsWith($"'{uri}' is not a usable libvirt SSH URI: ", e.Message);
    }

    [Fact]
    public void Targets_with_equal_options_are_equal()
    {
        Assert.Equal(new SshTarget("h", Options: ["-o", "A=b"]), new SshTarget("h", Options: ["-o", "A=b"]));
        Assert.NotEqual(new SshTarget("h", Options: ["-o", "A=b"]), new SshTarget("h", Options: ["-o", "A=c"]));
    }

    [Fact]
    public void Shell_quoting_keeps_every_character_literal()
    {
        Assert.Equal("'it'\\''s $(x) `y` \"z\"'", ShellQuote.Quote("it's $(x) `y` \"z\""));
        Assert.Equal("sh -c 'echo \"$1\"' virtbackup 'a b' ''\\'''", ShellQuote.ShScript("echo \"$1\"", "a b", "'"));
        Assert.Throws<ArgumentException>(() => ShellQuote.Quote("a\0b"));
    }
}
