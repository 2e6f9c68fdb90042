using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// TLS on the connected socket, after the server acknowledged NBD_OPT_STARTTLS: a synchronous TLS client handshake,
/// then every byte goes through the <see cref="SslStream"/> (one reader thread and one writer at a time, which SslStream allows).
/// The server's certificate must chain to the configured CA only and, unless switched off, carry the expected name.
/// </summary>
internal sealed partial class NbdTransport
{
    private SslStream? _tls;

    public bool IsTls => _tls is not null;

    /// <summary>Runs the TLS handshake; failures become an <see cref="NbdException"/> saying whose certificate is wrong and why.</summary>
    public void StartTls(NbdTls tls)
    {
        var (authorities, client) = tls.Load();
        var expectedName = tls.ServerName ?? _uri.Host ?? "localhost";
        string? rejection = null;
        var stream = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(authorities);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = expectedName,
            CertificateChainPolicy = policy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                rejection = CheckServerCertificate(tls, expectedName, certificate, chain, errors);
                return rejection is null;
            },
        };
        if (client is not null)
        {
            options.ClientCertificates = [client];
            // Always offer ours: the server's list of acceptable issuers must not make SslStream send none.
            options.LocalCertificateSelectionCallback = (_, _, _, _, _) => client;
        }

        try
        {
            stream.AuthenticateAsClient(options);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            stream.Dispose();
            if (rejection is not null)
            {
                throw new NbdException($"NBD TLS with {_uri}: the server's certificate is not accepted: {rejection}.", "TLS", inner: e);
            }

            throw new NbdException(
                $"NBD TLS with {_uri}: the TLS handshake failed: {e.Message}{Inner(e)}. {ClientCertificateHint(tls)}", "TLS", inner: e);
        }

        _tls = stream;
    }

    /// <summary>
    /// What to check when the server drops a TLS connection during or right after the handshake: usually it
    /// wants a client certificate that we did not send or that its CA did not sign.
    /// </summary>
    internal static string ClientCertificateHint(NbdTls tls) => tls.ClientCertificateFile is null
        ? $"The server probably requires a client certificate, and none is configured (put {NbdTls.ClientCertificateFileName} and {NbdTls.ClientKeyFileName}, signed by the CA the server trusts, next to {NbdTls.CaCertificateFileName})."
        : $"If the server verifies clients, it probably does not accept our client certificate '{tls.ClientCertificateFile}' (it must be signed by the CA the server trusts).";

    private static string? CheckServerCertificate(NbdTls tls, string expectedName, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return "the server sent no certificate";
        }

        var subject = certificate.Subject;
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            var reasons = chain?.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct().ToList() ?? [];
            var detail = reasons.Count == 0 ? "" : $" ({string.Join("; ", reasons)})";
            return $"the server's certificate '{subject}' is not signed by a trusted CA: it does not chain to the CA certificate in '{tls.CaCertificateFile}'{detail}";
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 && tls.CheckServerName)
        {
            return $"name mismatch: the server's certificate '{subject}' is not issued for '{expectedName}' (its subject alternative names must include it)";
        }

        return null;
    }

    private static string Inner(Exception e) => e.InnerException is { } inner && inner.Message != e.Message ? $" ({inner.Message})" : "";
}
