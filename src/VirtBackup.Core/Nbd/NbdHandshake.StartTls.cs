using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

internal sealed partial class NbdHandshake
{
    /// <summary>The command-line option that turns TLS on, named when a server demands TLS we did not ask for.</summary>
    internal const string TlsOptionHint = "--nbd-tls-dir DIR";

    /// <summary>
    /// Step 2b (right after the client flags): NBD_OPT_STARTTLS without data; after the server's NBD_REP_ACK the
    /// TLS handshake runs on the same socket, and every later option and the transmission phase travel inside TLS.
    /// </summary>
    public void StartTls(NbdTls tls)
    {
        SendOption(OptStartTls, []);
        var reply = ReadOptionReply(OptStartTls);
        if (reply.Type == RepAck && reply.Data.Length == 0)
        {
            transport.StartTls(tls);
            return;
        }

        if (reply.Type == RepAck)
        {
            throw Violation(OptStartTls, $"NBD_REP_ACK with {reply.Data.Length} bytes of data");
        }

        if ((reply.Type & RepFlagError) != 0)
        {
            throw new NbdException(
                $"NBD_OPT_STARTTLS: the server refused TLS with {OptionErrorName(reply.Type)}{ErrorText(reply)}: it is not set up for TLS " +
                "(qemu-nbd --tls-creds; libvirt: backup_tls_x509_cert_dir in qemu.conf), or connect without TLS.", "NBD_OPT_STARTTLS");
        }

        throw Violation(OptStartTls, $"unexpected reply type {reply.Type}");
    }

    /// <summary>The server answered NBD_REP_ERR_TLS_REQD: it serves nothing without TLS.</summary>
    private NbdException TlsRequired(uint option, OptionReply reply) => transport.IsTls
        ? Violation(option, "NBD_REP_ERR_TLS_REQD although TLS is already active")
        : new NbdException(
            $"{OptionName(option)}: the server requires TLS (NBD_REP_ERR_TLS_REQD){ErrorText(reply)}; connect with TLS " +
            $"(virtbackup backup: {TlsOptionHint} with the CA and client certificates).", OptionName(option));
}
