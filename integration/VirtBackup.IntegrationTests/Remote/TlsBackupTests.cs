using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VirtBackup.IntegrationTests.Remote;

/// <summary>
/// <c>--nbd-transport tcp --nbd-tls-dir</c> against libvirt's own TLS NBD server: the host's qemu.conf names
/// backup_tls_x509_cert_dir (integration/lab/backup-tls.sh, run before libvirtd starts), the client files live in
/// <see cref="ClientDir"/>. The VM is reached through qemu+ssh like <see cref="RemoteLabTests"/>.
/// </summary>
[Collection(LabCollection.Name)]
// Installed=true: integration/run-tests.sh runs these again against the Native AOT executable contrib/install.sh builds.
[Trait("Installed", "true")]
public sealed class TlsBackupTests : IDisposable
{
    private const string ClientDir = "/etc/pki/virtbackup-client";
    private const long M = 1024 * 1024;
    private static readonly string Uri = SshLab.RootLibvirtUri;
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-tls-").FullName;

    [Fact(Timeout = 240_000)]
    public async Task A_backup_over_tls_tcp_carries_the_disk_exactly_and_says_the_data_was_encrypted()
    {
        await SshLab.EnsureAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", fill: true);
        await vm.InjectWriteAsync("vda", "16M", "1M", "0x5a");

        var result = await BackupAsync(vm, ClientDir);

        Assert.True(result.ExitCode == 0, $"backup failed ({result.ExitCode}): {result.StandardError}");
        var stream = await ParsedStream.ReadAsync(result.StandardOutput);
        var expected = ParsedStream.Expected(await vm.FillLayoutAsync(), vm.DiskSizeBytes);
        expected.AsSpan((int)(16 * M), (int)M).Fill(0x5a);
        var rebuilt = new byte[vm.DiskSizeBytes];
        stream.ApplyTo("vda", rebuilt);
        Assert.True(expected.AsSpan().SequenceEqual(rebuilt), "the disk rebuilt from the TLS backup differs from the source");
        Assert.Contains("disk data comes from libvirt's NBD server on 127.0.0.1:", result.StandardError);
        Assert.Contains($"over TCP with TLS (CA {ClientDir}/ca-cert.pem)", result.StandardError);
        Assert.DoesNotContain("not encrypted", result.StandardError);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_tls_backup_that_does_not_trust_the_servers_ca_fails_naming_the_server_certificate_and_the_vm_runs_on()
    {
        await SshLab.EnsureAsync();
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        var wrongCa = Directory.CreateDirectory(Path.Combine(_work, "wrong-ca")).FullName;
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=Some other CA", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using var other = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllTextAsync(Path.Combine(wrongCa, "ca-cert.pem"), other.ExportCertificatePem());
        }

        File.Copy($"{ClientDir}/client-cert.pem", Path.Combine(wrongCa, "client-cert.pem"));
        File.Copy($"{ClientDir}/client-key.pem", Path.Combine(wrongCa, "client-key.pem"));

        var result = await BackupAsync(vm, wrongCa);

        Assert.True(result.ExitCode == 5, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains("the server's certificate is not accepted: the server's certificate 'CN=127.0.0.1' is not signed by a trusted CA", result.StandardError);
        Assert.Equal("running", (await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", vm.Name])).Trim());
        Assert.Matches(@"Job type:\s+None", await LabHost.RunAsync("virsh", ["-c", "qemu:///system", "domjobinfo", vm.Name]));
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);


    private Task<CliResult> BackupAsync(LabVm vm, string tlsDir) => VirtBackupCli.RunAsync(
    [
        "backup", "--connect", Uri, "--domain", vm.Name, "--state-dir", Path.Combine(_work, "state"), "--level", "copy",
        "--nbd-transport", "tcp", "--nbd-port", SshLab.FreePort(), "--nbd-tls-dir", tlsDir,
    ]);
}
