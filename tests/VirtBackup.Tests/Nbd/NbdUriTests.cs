namespace VirtBackup.Tests.Nbd;

public sealed class NbdUriTests
{
    [Fact]
    public void A_unix_uri_gives_the_socket_path_and_export_name()
    {
        var uri = NbdUri.Parse("nbd+unix:///vda?socket=/run/vb/nbd.sock");

        Assert.Equal(NbdTransportKind.Unix, uri.Transport);
        Assert.Equal("/run/vb/nbd.sock", uri.SocketPath);
        Assert.Equal("vda", uri.ExportName);
        Assert.Null(uri.Host);
    }

    [Fact]
    public void A_unix_uri_without_a_path_has_the_empty_export_name()
    {
        var uri = NbdUri.Parse("nbd+unix://?socket=/tmp/s");

        Assert.Equal("", uri.ExportName);
        Assert.Equal("/tmp/s", uri.SocketPath);
    }

    [Fact]
    public void A_tcp_uri_defaults_to_port_10809()
    {
        var uri = NbdUri.Parse("nbd://backup-host/disk0");

        Assert.Equal(NbdTransportKind.Tcp, uri.Transport);
        Assert.Equal(("backup-host", 10809, "disk0"), (uri.Host, uri.Port, uri.ExportName));
    }

    [Theory]
    [InlineData("nbd://127.0.0.1:10900", "127.0.0.1", 10900, "")]
    [InlineData("nbd://127.0.0.1:10900/", "127.0.0.1", 10900, "")]
    [InlineData("nbd://[::1]:2000/a%20b", "::1", 2000, "a b")]
    [InlineData("nbd://[fe80::1]/x", "fe80::1", 10809, "x")]
    [InlineData("nbd://h/with/slashes", "h", 10809, "with/slashes")]
    public void Tcp_uris_parse_host_port_and_percent_decoded_export(string text, string host, int port, string export)
    {
        var uri = NbdUri.Parse(text);

        Assert.Equal((host, port, export), (uri.Host, uri.Port, uri.ExportName));
    }

    [Fact]
    public void Percent_encoded_socket_paths_and_export_names_are_decoded()
    {
        var uri = NbdUri.Parse("nbd+unix:///d%C3%A9j%C3%A0?socket=/tmp/a%20b.sock");

        Assert.Equal("déjà", uri.ExportName);
        Assert.Equal("/tmp/a b.sock", uri.SocketPath);
    }

    [Theory]
    [InlineData("nbd+unix:///vda?socket=/run/x.sock")]
    [InlineData("nbd://host:1234/vda")]
    [InlineData("nbd://[::1]/a%20b")]
    [InlineData("nbd://host/")]
    public void Uris_round_trip_through_ToString(string text)
    {
        var uri = NbdUri.Parse(text);

        Assert.Equal(uri, NbdUri.Parse(uri.ToString()));
    }

    [Theory]
    [InlineData("nbd+unix:///vda", "the socket=PATH query parameter is required")]
    [InlineData("nbd+unix://host/vda?socket=/x", "a nbd+unix URI has no host")]
    [InlineData("nbds://host/vda", "TLS (nbds) is not supported")]
    [InlineData("http://host/vda", "unsupported scheme 'http'")]
    [InlineData("nbd://host:99999/vda", "invalid port '99999'")]
    [InlineData("nbd://host:abc/vda", "invalid port 'abc'")]
    [InlineData("nbd:///vda", "the host is missing")]
    [InlineData("/dev/nbd0", "expected nbd://HOST[:PORT]/EXPORT")]
    [InlineData("nbd://host/%zz", "bad percent-encoding")]
    public void Invalid_uris_are_rejected_saying_what_is_wrong(string text, string problem)
    {
        var error = Assert.Throws<NbdException>(() => NbdUri.Parse(text));

        Assert.Equal("URI", error.Command);
        Assert.StartsWith($"Invalid NBD URI '{text}': ", error.Message);
        Assert.Contains(problem, error.Message);
    }
}
