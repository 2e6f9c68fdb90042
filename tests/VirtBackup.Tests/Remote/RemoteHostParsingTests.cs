using System.Formats.Tar;

namespace VirtBackup.Tests.Remote;

/// <summary>What comes back from the remote scripts, taken apart; which URIs mean a remote host; the TCP job XML.</summary>
public class RemoteHostParsingTests
{
    [Theory]
    [InlineData("f 12345 1700000000.1234567890", false, 12345, 1700000000_1234567L)]
    [InlineData("d 4096 1700000000.0000000009", true, 0, 1700000000_0000000L)]
    [InlineData("f 0 1700000000", false, 0, 1700000000_0000000L)]
    [InlineData("f 1 1700000000.12", false, 1, 1700000000_1200000L)]
    public void A_stat_line_becomes_kind_size_and_dotnet_ticks(string line, bool directory, long size, long unixTicks)
    {
        Assert.Equal(new HostFileStatus(directory, size, DateTime.UnixEpoch.Ticks + unixTicks), SshHostFiles.ParseStatus(line));
    }

    [Theory]
    [InlineData("")]
    [InlineData("l 1 1700000000.1")]
    [InlineData("f x 1700000000.1")]
    [InlineData("f 1 17.00.1")]
    [InlineData("f 1 1700000000.1a")]
    [InlineData("f 1 1700000000.1 extra")]
    public void An_unexpected_stat_line_is_no_status(string line) => Assert.Null(SshHostFiles.ParseStatus(line));

    [Fact(Timeout = 10_000)]
    public async Task A_state_tar_gives_the_file_first_and_the_tree_after_it_sorted()
    {
        var tar = await TarAsync(("./vm_VARS.fd", TarEntryType.RegularFile, [1, 2, 3]), ("./", TarEntryType.Directory, []),
            ("./tpm2-00.permall", TarEntryType.RegularFile, [9]), ("./.lock", TarEntryType.RegularFile, []), ("./sub/", TarEntryType.Directory, []),
            ("./sub/vm_VARS.fd", TarEntryType.RegularFile, [7]));

        var (file, tree) = await SshHostFiles.ParseStateAsync(tar, "/var/lib/libvirt/qemu/nvram/vm_VARS.fd", CancellationToken.None);
        var (none, treeOnly) = await SshHostFiles.ParseStateAsync(await TarAsync(("./a", TarEntryType.RegularFile, [5])), null, CancellationToken.None);

        Assert.Equal([1, 2, 3], file);
        Assert.Equal([".lock", "sub/vm_VARS.fd", "tpm2-00.permall"], tree.Select(f => f.RelativePath));
        Assert.Equal([7], tree[1].Content);
        Assert.Null(none);
        Assert.Equal(["a"], treeOnly.Select(f => f.RelativePath));
    }

    [Theory(Timeout = 10_000)]
    [InlineData("./other_VARS.fd", TarEntryType.RegularFile, "is not a regular file (the tar stream has a RegularFile './other_VARS.fd')")]
    [InlineData("./vm_VARS.fd", TarEntryType.SymbolicLink, "is not a regular file (the tar stream has a SymbolicLink './vm_VARS.fd')")]
    [InlineData("./vm_VARS.fd", TarEntryType.Directory, "is not a regular file (the tar stream has a Directory './vm_VARS.fd')")]
    public async Task A_state_tar_whose_first_entry_is_not_the_file_is_refused(string name, TarEntryType type, string message)
    {
        var tar = await TarAsync((name, type, []));

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => SshHostFiles.ParseStateAsync(tar, "/nvram/vm_VARS.fd", CancellationToken.None));

        Assert.Equal($"'/nvram/vm_VARS.fd' {message}", e.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_state_tar_with_a_link_in_the_tree_is_refused()
    {
        var tar = await TarAsync(("./vm_VARS.fd", TarEntryType.RegularFile, [1]), ("./link", TarEntryType.SymbolicLink, []));

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => SshHostFiles.ParseStateAsync(tar, "/nvram/vm_VARS.fd", CancellationToken.None));

        Assert.Equal("'./link' is a SymbolicLink, not a regular file or directory", e.Message);
    }

    [Theory]
    [InlineData("qemu:///system", true)]
    [InlineData("qemu+unix:///system", true)]
    [InlineData("qemu:///session", true)]
    [InlineData("qemu+ssh://root@host/system", false)]
    [InlineData("qemu+tcp://host/system", false)]
    public void A_uri_without_a_host_is_this_machine(string uri, bool local) => Assert.Equal(local, HostConnection.IsLocal(uri));

    [Fact(Timeout = 10_000)]
    public async Task A_remote_uri_without_ssh_is_refused_before_anything_is_done()
    {
        var e = await Assert.ThrowsAsync<PreflightException>(
            () => HostConnection.ConnectAsync("qemu+tcp://vmhost/system", null, Serilog.Core.Logger.None, CancellationToken.None));

        Assert.StartsWith("'qemu+tcp://vmhost/system' is a libvirt on another host without SSH", e.Message);
    }

    [Fact]
    public void A_tcp_job_names_its_address_and_port()
    {
        var xml = BackupJobXml.Backup(JobServer.Tcp("10.0.0.5", 10809), [new BackupJobDisk("vda", "/s/vda.scratch", true)], [], null);

        Assert.Contains("<server transport=\"tcp\" name=\"10.0.0.5\" port=\"10809\" />", xml);
        Assert.Equal(
            BackupJobXml.Backup("/run/virtbackup/x/nbd.sock", [new BackupJobDisk("vda", "/s", false)], [], null),
            BackupJobXml.Backup(JobServer.Unix("/run/virtbackup/x/nbd.sock"), [new BackupJobDisk("vda", "/s", false)], [], null));
    }

    [Fact]
    public void A_tls_job_asks_libvirt_for_tls_on_its_tcp_server()
    {
        var xml = BackupJobXml.Backup(JobServer.Tcp("10.0.0.5", 10809, tls: true), [new BackupJobDisk("vda", "/s/vda.scratch", true)], [], null);

        Assert.Equal(
            "<domainbackup mode=\"pull\"><server transport=\"tcp\" tls=\"yes\" name=\"10.0.0.5\" port=\"10809\" /><disks>" +
            "<disk name=\"vda\" backup=\"yes\" type=\"file\"><scratch file=\"/s/vda.scratch\" /></disk></disks></domainbackup>",
            xml);
        Assert.True(JobServer.Tcp("10.0.0.5", 10809, tls: true).Serves("<domainbackup mode='pull'><server transport='tcp' tls='yes' name='10.0.0.5' port='10809'/><disks/></domainbackup>"));
    }

    [Fact]
    public void A_failed_runs_recovery_knows_its_own_job_by_socket_or_tcp_port_and_no_other()
    {
        const string unixJob = "<domainbackup mode='pull'><server transport='unix' socket='/run/virtbackup/u-1/nbd.sock'/><disks/></domainbackup>";
        const string tcpJob = "<domainbackup mode='pull'><server transport='tcp' name='10.0.0.5' port='10809'/><disks/></domainbackup>";

        Assert.True(JobServer.Unix("/run/virtbackup/u-1/nbd.sock").Serves(unixJob));
        Assert.False(JobServer.Unix("/run/virtbackup/u-2/nbd.sock").Serves(unixJob));
        Assert.False(JobServer.Unix("/run/virtbackup/u-1/nbd.sock").Serves(tcpJob));
        Assert.True(JobServer.Tcp("10.0.0.5", 10809).Serves(tcpJob));
        Assert.False(JobServer.Tcp("10.0.0.5", 10810).Serves(tcpJob));
        Assert.False(JobServer.Tcp("10.0.0.5", 10809).Serves(unixJob));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("--nbd-port", "10809")]
    [InlineData("--nbd-host", "10.0.0.5")]
    public async Task Tcp_options_without_the_tcp_transport_exit_2(string option, string value)
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", "vm", option, value]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--nbd-host and --nbd-port go with --nbd-transport tcp", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_tls_directory_without_the_tcp_transport_exits_2()
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", "vm", "--nbd-tls-dir", "/etc/pki/virtbackup"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--nbd-tls-dir goes with --nbd-transport tcp (the ssh transport is encrypted by SSH already)", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_tls_directory_without_ca_cert_pem_fails_before_connecting_and_names_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("vbtls-").FullName;
        try
        {
            var result = await VirtBackupCli.RunAsync(
                ["backup", "--domain", "vm", "--connect", "qemu:///nonexistent", "--nbd-transport", "tcp", "--nbd-tls-dir", dir]);

            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains($"NBD TLS: '{dir}/ca-cert.pem' does not exist", result.StandardError);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task The_config_files_nbd_tls_dir_is_used_by_tcp_backups_only()
    {
        var dir = Directory.CreateTempSubdirectory("vbtls-").FullName;
        try
        {
            var config = Path.Combine(dir, "virtbackup.conf");
            await File.WriteAllTextAsync(config, $"nbd-tls-dir = {dir}/tls\n");

            var tcp = await VirtBackupCli.RunAsync(
                ["backup", "--domain", "vm", "--config", config, "--connect", "qemu:///nonexistent", "--nbd-transport", "tcp"]);
            var ssh = await VirtBackupCli.RunAsync(["backup", "--domain", "vm", "--config", config, "--connect", "qemu:///nonexistent"]);

            Assert.Contains($"NBD TLS: the directory '{dir}/tls' does not exist", tcp.StandardError);
            Assert.NotEqual(2, ssh.ExitCode);
            Assert.DoesNotContain("NBD TLS", ssh.StandardError);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task<byte[]> TarAsync(params (string Name, TarEntryType Type, byte[] Content)[] entries)
    {
        var buffer = new MemoryStream();
        await using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, type, content) in entries)
            {
                var entry = new PaxTarEntry(type, name);
                if (type == TarEntryType.RegularFile)
                {
                    entry.DataStream = new MemoryStream(content);
                }
                else if (type == TarEntryType.SymbolicLink)
                {
                    entry.LinkName = "/etc/shadow";
                }

                await writer.WriteEntryAsync(entry);
            }
        }

        return buffer.ToArray();
    }
}
