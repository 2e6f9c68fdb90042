using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// TLS for an NBD connection (NBD_OPT_STARTTLS): the CA that signed the server's certificate, optionally our
/// client certificate and key (a server that verifies peers, e.g. libvirt's backup_tls_x509_verify=1, requires one),
/// and which name the server's certificate must carry. Files are PEM.
/// </summary>
public sealed record NbdTls
{
    /// <summary>QEMU's tls-creds-x509 client layout, which <see cref="FromDirectory"/> reads.</summary>
    public const string CaCertificateFileName = "ca-cert.pem";
    public const string ClientCertificateFileName = "client-cert.pem";
    public const string ClientKeyFileName = "client-key.pem";

    /// <summary>The CA certificate(s) the server's certificate must chain to (only these are trusted).</summary>
    public required string CaCertificateFile { get; init; }

    /// <summary>Our certificate, presented when the server asks for one; needs <see cref="ClientKeyFile"/>.</summary>
    public string? ClientCertificateFile { get; init; }

    /// <summary>The private key of <see cref="ClientCertificateFile"/>.</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>The name (DNS name or IP address) the server's certificate must carry; null: the host of the NBD URI.</summary>
    public string? ServerName { get; init; }

    /// <summary>Whether the server's certificate must carry the expected name (on by default; off trusts any certificate the CA signed).</summary>
    public bool CheckServerName { get; init; } = true;

    /// <summary>
    /// QEMU's client layout in <paramref name="directory"/>: ca-cert.pem, and client-cert.pem with client-key.pem
    /// when they exist (both or neither).
    /// </summary>
    public static NbdTls FromDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var ca = Path.Combine(directory, CaCertificateFileName);
        var cert = Path.Combine(directory, ClientCertificateFileName);
        var key = Path.Combine(directory, ClientKeyFileName);
        if (!Directory.Exists(directory))
        {
            throw new NbdException($"NBD TLS: the directory '{directory}' does not exist (it must hold {CaCertificateFileName}, {ClientCertificateFileName} and {ClientKeyFileName}).", "TLS");
        }

        if (!File.Exists(ca))
        {
            throw new NbdException($"NBD TLS: '{ca}' does not exist: the TLS directory must hold the CA certificate that signed the server's certificate.", "TLS");
        }

        if (File.Exists(cert) != File.Exists(key))
        {
            throw new NbdException($"NBD TLS: '{directory}' holds only one of {ClientCertificateFileName} and {ClientKeyFileName}; the client certificate needs both.", "TLS");
        }

        return File.Exists(cert)
            ? new NbdTls { CaCertificateFile = ca, ClientCertificateFile = cert, ClientKeyFile = key }
            : new NbdTls { CaCertificateFile = ca };
    }

    internal void Validate()
    {
        if (string.IsNullOrEmpty(CaCertificateFile))
        {
            throw new ArgumentException("TLS needs a CA certificate file.", nameof(CaCertificateFile));
        }

        if ((ClientCertificateFile is null) != (ClientKeyFile is null))
        {
            throw new ArgumentException("A client certificate needs its key file, and a key file its certificate.", nameof(ClientCertificateFile));
        }
    }

    /// <summary>Reads the files; a missing or unreadable one becomes an <see cref="NbdException"/> naming it.</summary>
    internal (X509Certificate2Collection Authorities, X509Certificate2? Client) Load()
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(CaCertificateFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new NbdException($"NBD TLS: cannot read the CA certificate '{CaCertificateFile}': {e.Message}", "TLS", inner: e);
        }

        if (authorities.Count == 0)
        {
            throw new NbdException($"NBD TLS: '{CaCertificateFile}' holds no PEM certificate (CA certificate expected).", "TLS");
        }

        if (ClientCertificateFile is null)
        {
            return (authorities, null);
        }

        try
        {
            return (authorities, X509Certificate2.CreateFromPemFile(ClientCertificateFile, ClientKeyFile));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new NbdException(
                $"NBD TLS: cannot read the client certificate '{ClientCertificateFile}' with its key '{ClientKeyFile}': {e.Message}", "TLS", inner: e);
        }
    }
}
