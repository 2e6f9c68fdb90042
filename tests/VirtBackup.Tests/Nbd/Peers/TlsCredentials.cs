using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>
/// A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate, plus an unrelated CA,
/// written in QEMU's tls-creds-x509 layouts with .NET's CertificateRequest (no external tool). Deleted on dispose.
/// </summary>
internal sealed class TlsCredentials : IDisposable
{
    private readonly TempDir _dir = new();

    public TlsCredentials()
    {
        try
        {
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var ca = CreateAuthority("VirtBackup test CA", caKey);
            using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var otherCa = CreateAuthority("Some other CA", otherKey);

            ServerDir = Directory.CreateDirectory(_dir.File("server")).FullName;
            ClientDir = Directory.CreateDirectory(_dir.File("client")).FullName;
            NoClientCertDir = Directory.CreateDirectory(_dir.File("noclient")).FullName;
            WrongCaDir = Directory.CreateDirectory(_dir.File("wrongca")).FullName;

            WritePem(ServerDir, NbdTls.CaCertificateFileName, ca.ExportCertificatePem());
            WriteLeaf(ServerDir, "server", ca, caKey, "127.0.0.1", serverAuth: true);
            WritePem(ClientDir, NbdTls.CaCertificateFileName, ca.ExportCertificatePem());
            WriteLeaf(ClientDir, "client", ca, caKey, "virtbackup client", serverAuth: false);
            WritePem(NoClientCertDir, NbdTls.CaCertificateFileName, ca.ExportCertificatePem());
            WritePem(WrongCaDir, NbdTls.CaCertificateFileName, otherCa.ExportCertificatePem());
            File.Copy(Path.Combine(ClientDir, NbdTls.ClientCertificateFileName), Path.Combine(WrongCaDir, NbdTls.ClientCertificateFileName));
            File.Copy(Path.Combine(ClientDir, NbdTls.ClientKeyFileName), Path.Combine(WrongCaDir, NbdTls.ClientKeyFileName));
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    /// <summary>ca-cert.pem, server-cert.pem, server-key.pem: for qemu-nbd's and nbdkit's --tls-creds / --tls-certificates.</summary>
    public string ServerDir { get; }

    /// <summary>ca-cert.pem, client-cert.pem, client-key.pem: what --nbd-tls-dir points at.</summary>
    public string ClientDir { get; }

    /// <summary>Only the right ca-cert.pem.</summary>
    public string NoClientCertDir { get; }

    /// <summary>An unrelated CA's ca-cert.pem with the (valid) client certificate.</summary>
    public string WrongCaDir { get; }

    private static X509Certificate2 CreateAuthority(string name, ECDsa key)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
    }

    private static void WriteLeaf(string dir, string role, X509Certificate2 ca, ECDsa caKey, string commonName, bool serverAuth)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [serverAuth ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var certificate = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
        WritePem(dir, $"{role}-cert.pem", certificate.ExportCertificatePem());
        WritePem(dir, $"{role}-key.pem", key.ExportPkcs8PrivateKeyPem());
    }

    private static void WritePem(string dir, string name, string pem) => File.WriteAllText(Path.Combine(dir, name), pem + "\n");

    public void Dispose() => _dir.Dispose();
}
