using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>NBD_OPT_STARTTLS answers a real server would not give, from the fake server: each is named precisely.</summary>
public sealed class StartTlsNegotiationTests
{
    private static readonly NbdConnectOptions WithTls = new() { Tls = new NbdTls { CaCertificateFile = "/nonexistent/ca-cert.pem" } };

    private static FakeNbdServer AnswerStartTls(uint type, byte[] data, List<(uint Option, byte[] Data)> seen) => new FakeNbdServer(_ => Task.CompletedTask)
    {
        OptionHook = async (c, option, payload) =>
        {
            lock (seen)
            {
                seen.Add((option, payload));
            }

            if (option != 5)
            {
                return FakeOptionOutcome.NotHandled;
            }

            await c.SendOptionReplyAsync(5, type, data);
            return FakeOptionOutcome.Handled;
        },
    }.Start();

    [Fact(Timeout = 30000)]
    public async Task Starttls_is_the_first_option_sent_without_data_and_a_refusal_says_the_server_refused_tls()
    {
        var seen = new List<(uint Option, byte[] Data)>();
        await using var server = AnswerStartTls(0x80000002, "TLS not configured"u8.ToArray(), seen);

        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri, WithTls));

        Assert.Equal(
            "NBD_OPT_STARTTLS: the server refused TLS with NBD_REP_ERR_POLICY (forbidden by server policy): TLS not configured: it is not set up for TLS " +
            "(qemu-nbd --tls-creds; libvirt: backup_tls_x509_cert_dir in qemu.conf), or connect without TLS.",
            e.Message);
        Assert.Equal(5u, seen[0].Option);
        Assert.Empty(seen[0].Data);
        Assert.Single(seen);
        Assert.False(e.IsServerError);
    }

    [Fact(Timeout = 30000)]
    public async Task An_ack_to_starttls_carrying_data_is_a_server_error()
    {
        await using var server = AnswerStartTls(1, [1, 2, 3], []);

        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri, WithTls));

        Assert.Equal("NBD NBD_OPT_STARTTLS: server error: NBD_REP_ACK with 3 bytes of data. This is likely a bug in the NBD server.", e.Message);
        Assert.True(e.IsServerError);
    }

    [Fact(Timeout = 30000)]
    public async Task Tls_required_for_an_option_without_tls_names_the_option_to_use()
    {
        await using var server = new FakeNbdServer(_ => Task.CompletedTask)
        {
            OptionHook = async (c, option, _) =>
            {
                await c.SendOptionReplyAsync(option, 0x80000005, []);
                return FakeOptionOutcome.Handled;
            },
        }.Start();

        var e = await Assert.ThrowsAsync<NbdException>(() => NbdClient.ConnectAsync(server.Uri));

        Assert.Equal(
            "NBD_OPT_STRUCTURED_REPLY: the server requires TLS (NBD_REP_ERR_TLS_REQD); connect with TLS (virtbackup backup: --nbd-tls-dir DIR with the CA and client certificates).",
            e.Message);
    }
}
