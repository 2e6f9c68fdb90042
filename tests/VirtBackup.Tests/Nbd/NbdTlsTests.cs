using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>NBD_OPT_STARTTLS against real servers: qemu-nbd verifying client certificates, and nbdkit.</summary>
public sealed class NbdTlsTests(QemuNbdTlsFixture fixture) : IClassFixture<QemuNbdTlsFixture>
{
    private const int Mi = 1024 * 1024;

    private NbdConnectOptions WithTls(string dir) => new() { MetaContexts = ["base:allocation"], Tls = NbdTls.FromDirectory(dir) };

    [Fact(Timeout = 60000)]
    public async Task Over_tls_qemu_nbd_serves_the_exact_bytes_and_the_same_extents_as_in_plain_text()
    {
        var options = WithTls(fixture.Credentials.ClientDir);
        var primary = await NbdClient.ConnectAsync(fixture.Uri, options);
        var extents = await primary.GetExtentsAsync("base:allocation", 0, primary.ExportSize).ToListAsync();
        await using var pool = await NbdReaderPool.OpenAsync(primary, 4, options);
        var back = new byte[QemuNbdLayoutFixture.Size];

        await pool.ReadRangesAsync([new NbdRange(0, back.Length)], (offset, bytes) =>
        {
            bytes.Span.CopyTo(back.AsSpan((int)offset));
            return ValueTask.CompletedTask;
        });

        Assert.Equal(4, pool.Clients.Count);
        Assert.Equal(QemuNbdLayoutFixture.ExpectedAllocation, extents.Select(e => (e.Offset, e.Length, e.Flags)));
        Assert.True(back.AsSpan().SequenceEqual(QemuNbdLayoutFixture.BuildExpected()));
    }

    [Fact(Timeout = 60000)]
    public async Task Without_tls_a_server_that_requires_it_is_reported_with_the_option_to_use()
    {
        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(fixture.Uri, new NbdConnectOptions { MetaContexts = ["base:allocation"] }));

        Assert.Equal(
            "NBD_OPT_STRUCTURED_REPLY: the server requires TLS (NBD_REP_ERR_TLS_REQD): Option 0x8 not permitted before TLS; " +
            "connect with TLS (virtbackup backup: --nbd-tls-dir DIR with the CA and client certificates).",
            e.Message);
        Assert.False(e.IsServerError);
    }

    [Fact(Timeout = 60000)]
    public async Task A_server_certificate_from_another_ca_is_refused_as_untrusted()
    {
        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(fixture.Uri, WithTls(fixture.Credentials.WrongCaDir)));

        Assert.StartsWith($"NBD TLS with {fixture.Uri}: the server's certificate is not accepted: the server's certificate 'CN=127.0.0.1' is not signed by a trusted CA", e.Message);
        Assert.Contains(Path.Combine(fixture.Credentials.WrongCaDir, "ca-cert.pem"), e.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task A_server_certificate_for_another_name_is_refused_unless_name_checking_is_off()
    {
        var tls = NbdTls.FromDirectory(fixture.Credentials.ClientDir) with { ServerName = "vmhost.example" };

        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(fixture.Uri, new NbdConnectOptions { Tls = tls }));
        await using var unchecked_ = await NbdClient.ConnectAsync(fixture.Uri, new NbdConnectOptions { Tls = tls with { CheckServerName = false } });

        Assert.Equal(
            $"NBD TLS with {fixture.Uri}: the server's certificate is not accepted: name mismatch: the server's certificate 'CN=127.0.0.1' " +
            "is not issued for 'vmhost.example' (its subject alternative names must include it).",
            e.Message);
        Assert.Equal(QemuNbdLayoutFixture.Size, unchecked_.ExportSize);
    }

    [Fact(Timeout = 60000)]
    public async Task The_dns_name_in_the_server_certificate_is_accepted_too()
    {
        var tls = NbdTls.FromDirectory(fixture.Credentials.ClientDir) with { ServerName = "localhost" };

        await using var client = await NbdClient.ConnectAsync(fixture.Uri, new NbdConnectOptions { Tls = tls });

        Assert.Equal(QemuNbdLayoutFixture.Size, client.ExportSize);
    }

    [Fact(Timeout = 60000)]
    public async Task Without_a_client_certificate_a_verifying_server_drops_us_and_the_message_says_so()
    {
        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(fixture.Uri, WithTls(fixture.Credentials.NoClientCertDir)));

        Assert.Contains("The server probably requires a client certificate, and none is configured (put client-cert.pem and client-key.pem", e.Message);
        Assert.Equal("TLS", e.Command);
    }

    [Fact(Timeout = 60000)]
    public async Task A_server_without_tls_refuses_starttls_and_the_message_says_it_refused_tls()
    {
        await using var server = await NbdkitServer.StartTcpAsync("memory", "size=1M");

        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri, WithTls(fixture.Credentials.ClientDir)));

        Assert.StartsWith("NBD_OPT_STARTTLS: the server refused TLS with NBD_REP_ERR_POLICY (forbidden by server policy)", e.Message);
        Assert.Contains("it is not set up for TLS", e.Message);
    }

    [Fact(Timeout = 60000)]
    public async Task Nbdkit_requiring_tls_and_client_certificates_round_trips_writes()
    {
        await using var server = await NbdkitServer.StartTcpAsync(
            "--tls=require", $"--tls-certificates={fixture.Credentials.ServerDir}", "--tls-verify-peer", "memory", "size=1M");
        await using var client = await NbdClient.ConnectAsync(server.Uri, WithTls(fixture.Credentials.ClientDir));
        var data = new byte[Mi / 2];
        new Random(11).NextBytes(data);

        await client.WriteAsync(Mi / 4, data);
        var back = new byte[Mi];
        await client.ReadAsync(0, back);
        var extents = await client.GetExtentsAsync("base:allocation", 0, client.ExportSize).ToListAsync();

        var expected = new byte[Mi];
        data.CopyTo(expected, Mi / 4);
        Assert.True(back.AsSpan().SequenceEqual(expected));
        Assert.Equal([new NbdExtent(0, Mi / 4, 3), new NbdExtent(Mi / 4, Mi / 2, 0), new NbdExtent(3 * Mi / 4, Mi / 4, 3)], extents);
    }

    [Fact]
    public void A_tls_directory_without_ca_cert_pem_is_refused_naming_the_file()
    {
        using var dir = new TempDir();

        var e = Assert.Throws<NbdException>(() => NbdTls.FromDirectory(dir.Path));

        Assert.Equal($"NBD TLS: '{dir.File("ca-cert.pem")}' does not exist: the TLS directory must hold the CA certificate that signed the server's certificate.", e.Message);
    }
}
