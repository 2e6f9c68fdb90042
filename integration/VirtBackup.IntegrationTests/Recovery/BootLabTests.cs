using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// <c>virtbackup boot</c> and <c>verify --boot</c> on real backups of lab VMs: the agent VM booted from a full and an
/// incremental runs within seconds with its TPM state, answers its agent and has the file written before the
/// incremental; <c>boot --stop</c> and every <c>verify --boot</c> leave nothing behind; a guest whose console never
/// says the expected words fails verify with exit 9.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class BootLabTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-boot-").FullName;

    [Fact(Timeout = 600_000)]
    public async Task The_agent_vm_booted_from_a_full_and_an_incremental_runs_with_its_tpm_state_reads_its_file_and_verify_boot_passes_with_a_png()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", agent: true);
        var name = $"{vm.Name}-b";
        var full = await BackupAsync(vm, "full");
        await vm.WriteGuestFileAsync($"{LabVm.GuestMountPoint}/marker.txt", Encoding.ASCII.GetBytes("written before the incremental\n"));
        await vm.AgentCommandAsync("guest-exec", new { path = "/bin/sync" });
        await vm.AgentCommandAsync("guest-fsfreeze-freeze");
        await vm.AgentCommandAsync("guest-fsfreeze-thaw");
        var inc = await BackupAsync(vm, "inc");
        try
        {
            var clock = Stopwatch.StartNew();
            var booted = await VirtBackupCli.RunAsync(["boot", "--as", name, full, inc]);
            var bootSeconds = clock.Elapsed.TotalSeconds;

            Assert.True(booted.ExitCode == 0, $"boot failed ({booted.ExitCode}): {booted.StandardError}");
            Assert.True(bootSeconds < 30, $"boot took {bootSeconds:F1} s");
            using var libvirt = LibvirtConnection.Open();
            using var domain = libvirt.LookupByName(name);
            Assert.Equal(DomainState.Running, domain.GetState().State);
            Assert.NotEqual(vm.Uuid, domain.Uuid);
            var xml = domain.GetXml();
            Assert.DoesNotContain("<interface", xml);
            Assert.Contains("error_policy='stop' rerror_policy='stop'", xml);
            Assert.Contains($"/var/lib/libvirt/images/{name}-vda.overlay.qcow2", xml);
            await WaitForAgentAsync(name, TimeSpan.FromSeconds(240));
            Assert.Equal("written before the incremental\n", ReadGuestFile(name, $"{LabVm.GuestMountPoint}/marker.txt"));
            var swtpmLog = await File.ReadAllTextAsync($"/var/log/swtpm/libvirt/qemu/{name}-swtpm.log");
            Assert.DoesNotContain("error", swtpmLog, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("manufacturing", swtpmLog, StringComparison.OrdinalIgnoreCase);
            Assert.Contains($"dir=/var/lib/libvirt/swtpm/{domain.Uuid}/tpm2", await LabHost.RunAsync("pgrep", ["-a", "swtpm"]));
            var servePid = ServePid(name);

            var stopped = await VirtBackupCli.RunAsync(["boot", "--stop", name]);

            Assert.True(stopped.ExitCode == 0, $"boot --stop failed ({stopped.ExitCode}): {stopped.StandardError}");
            await AssertNothingLeftAsync(name, domain.Uuid, servePid);
        }
        finally
        {
            await VirtBackupCli.RunAsync(["boot", "--stop", name]);
        }

        var png = Path.Combine(_work, "screen.png");
        var verified = await VirtBackupCli.RunAsync(["verify", "--boot", "--timeout", "240", "--screenshot", png, "--json", full, inc]);

        Assert.True(verified.ExitCode == 0, $"verify --boot failed ({verified.ExitCode}): {verified.StandardError}");
        var report = JsonNode.Parse(verified.StandardOutput)!;
        Assert.Equal((true, true, true, true), ((bool)report["passed"]!, (bool)report["running"]!, (bool)report["tpmAccepted"]!, (bool)report["agentAnswered"]!));
        Assert.Contains("verify --boot passed", verified.StandardError);
        var image = await File.ReadAllBytesAsync(png);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R' }, image[..16]);
        Assert.Contains("PNG image data", await LabHost.RunAsync("file", [png]));
        await LabHost.RunAsync("python3", ["-c", "import sys,zlib,struct;d=open(sys.argv[1],'rb').read();i=8;z=b''\nwhile i<len(d):\n n,=struct.unpack('>I',d[i:i+4]);t=d[i+4:i+8];z+=d[i+8:i+8+n] if t==b'IDAT' else b'';i+=12+n\nw,h=struct.unpack('>II',d[16:24]);assert len(zlib.decompress(z))==h*(1+3*w)", png]);
        await AssertNothingLeftAsync((string)report["name"]!, null, 0);
    }

    [Fact(Timeout = 300_000)]
    public async Task Verify_boot_of_a_guest_whose_console_never_matches_exits_9_naming_the_pattern_and_leaves_nothing_behind()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        var full = await BackupAsync(vm, "full");

        var verified = await VirtBackupCli.RunAsync(["verify", "--boot", "--timeout", "15", "--expect-console", "^login: never-printed$", "--json", full]);

        Assert.Equal(9, verified.ExitCode);
        var report = JsonNode.Parse(verified.StandardOutput)!;
        Assert.Equal("not up within 15 s: the serial console did not match '^login: never-printed$'", (string?)report["failure"]);
        Assert.False((bool)report["passed"]!);
        Assert.Contains("verify --boot FAILED: not up within 15 s", verified.StandardError);
        await AssertNothingLeftAsync((string)report["name"]!, null, 0);
    }

    [Fact(Timeout = 300_000)]
    public async Task Verify_boot_of_a_chain_whose_tpm_state_is_garbage_exits_9_naming_the_tpm_and_leaves_nothing_behind()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        var full = await BackupAsync(vm, "full");
        var damaged = Path.Combine(_work, "damaged-tpm.tar");
        await File.WriteAllBytesAsync(damaged, await StreamRewriter.WithTpmContentAsync(await File.ReadAllBytesAsync(full),
            (_, content) => Enumerable.Range(0, content.Length).Select(i => (byte)(i * 7 + 1)).ToArray()));

        var verified = await VirtBackupCli.RunAsync(["verify", "--boot", "--timeout", "20", "--json", damaged]);

        Assert.Equal(9, verified.ExitCode);
        var report = JsonNode.Parse(verified.StandardOutput)!;
        var failure = (string?)report["failure"] ?? "";
        Assert.True(failure.Contains("tpm", StringComparison.OrdinalIgnoreCase), $"the failure does not name the TPM: {failure}");
        Assert.Contains("verify --boot FAILED", verified.StandardError);
        await AssertNothingLeftAsync((string)report["name"]!, null, 0);
    }

    [Fact(Timeout = 400_000)]
    public async Task When_the_server_dies_under_the_booted_vm_its_next_read_of_the_backup_pauses_it_with_an_io_error()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M", agent: true);
        var name = $"{vm.Name}-k";
        var full = await BackupAsync(vm, "full");
        try
        {
            var booted = await VirtBackupCli.RunAsync(["boot", "--as", name, full]);
            Assert.True(booted.ExitCode == 0, $"boot failed ({booted.ExitCode}): {booted.StandardError}");
            await WaitForAgentAsync(name, TimeSpan.FromSeconds(240));
            using var libvirt = LibvirtConnection.Open();
            using var domain = libvirt.LookupByName(name);

            await LabHost.RunAsync("kill", ["-KILL", ServePid(name).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            try
            {
                domain.QemuAgentCommand("""{"execute":"guest-exec","arguments":{"path":"/bin/dd","arg":["if=/dev/vda","of=/dev/null","bs=1M","iflag=direct"]}}""", 10);
            }
            catch (LibvirtException)
            {
                // The guest's own next read of the disk (it has background reads of its own) may pause it before the
                // agent takes the command; libvirt then calls the agent unavailable. The state asserted below decides.
            }

            var clock = Stopwatch.StartNew();
            while (domain.GetState().State == DomainState.Running && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200);
            }

            Assert.Equal(new DomainStateInfo(DomainState.Paused, (int)DomainPausedReason.IoError), domain.GetState());
        }
        finally
        {
            var stopped = await VirtBackupCli.RunAsync(["boot", "--stop", name]);
            Assert.True(stopped.ExitCode == 0, $"boot --stop failed ({stopped.ExitCode}): {stopped.StandardError}");
        }

        await AssertNothingLeftAsync(name, null, 0);
    }

    [Fact(Timeout = 300_000)]
    public async Task Verify_boot_interrupted_by_sigint_while_the_copy_runs_exits_8_and_leaves_nothing_behind()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        var full = await BackupAsync(vm, "full");
        using var verify = Reliability.CliProcess.Start(["verify", "--boot", "--timeout", "200", "--expect-console", "never-printed", full]);
        await verify.WaitForStderrAsync("booted vbverify-", TimeSpan.FromSeconds(120));
        var name = System.Text.RegularExpressions.Regex.Match(verify.StandardError, "booted (vbverify-[0-9a-f]{8})").Groups[1].Value;
        using (var libvirt = LibvirtConnection.Open())
        using (var domain = libvirt.LookupByName(name))
        {
            Assert.Equal(DomainState.Running, domain.GetState().State);
        }

        verify.Signal(Reliability.Signals.Int);
        var outcome = await verify.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(8, outcome.ExitCode);
        Assert.Contains($"removed boot {name}", outcome.StandardError);
        await AssertNothingLeftAsync(name, null, 0);
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private Task<string> BackupAsync(LabVm vm, string level) => BackupAsync(vm, level, _work);

    /// <summary>A backup of <paramref name="vm"/> at <paramref name="level"/> into a new stream file in <paramref name="work"/> (state in work/state).</summary>
    internal static async Task<string> BackupAsync(LabVm vm, string level, string work)
    {
        var result = await VirtBackupCli.RunAsync(["backup", "--domain", vm.Name, "--level", level, "--state-dir", Path.Combine(work, "state")]);
        Assert.True(result.ExitCode == 0, $"backup --level {level} failed ({result.ExitCode}): {result.StandardError}");
        var path = Path.Combine(work, $"{level}-{Guid.NewGuid():N}.tar");
        await File.WriteAllBytesAsync(path, result.StandardOutput);
        return path;
    }

    internal static int ServePid(string name)
    {
        var record = JsonNode.Parse(File.ReadAllText($"/run/virtbackup/boot-{name}/boot.json"))!;
        return (int)record["servePid"]!;
    }

    internal static async Task WaitForAgentAsync(string name, TimeSpan timeout)
    {
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(name);
        var clock = Stopwatch.StartNew();
        while (!domain.IsGuestAgentResponsive(2))
        {
            Assert.True(clock.Elapsed < timeout, $"the agent of {name} did not answer within {timeout.TotalSeconds} s");
            Assert.Equal(DomainState.Running, domain.GetState().State);
            await Task.Delay(500);
        }
    }

    internal static string ReadGuestFile(string name, string path)
    {
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(name);
        var handle = (long)JsonNode.Parse(domain.QemuAgentCommand($$$"""{"execute":"guest-file-open","arguments":{"path":"{{{path}}}"}}""", 10))!["return"]!;
        var read = JsonNode.Parse(domain.QemuAgentCommand($$$"""{"execute":"guest-file-read","arguments":{"handle":{{{handle}}}}}""", 10))!["return"]!;
        domain.QemuAgentCommand($$$"""{"execute":"guest-file-close","arguments":{"handle":{{{handle}}}}}""", 10);
        return Encoding.UTF8.GetString(Convert.FromBase64String((string)read["buf-b64"]!));
    }

    /// <summary>Alive and not a zombie: the stopped server may wait for whoever inherited it to reap it.</summary>
    internal static bool IsLive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static async Task AssertNothingLeftAsync(string name, string? uuid, int servePid)
    {
        var domains = await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "list", "--all", "--name"]);
        Assert.DoesNotContain(name, domains.Split('\n').Select(l => l.Trim()));
        Assert.False(Directory.Exists($"/run/virtbackup/boot-{name}"), "the run directory is left");
        Assert.Empty(Directory.EnumerateFiles(LabVm.ImagesDirectory, $"{name}-*"));
        Assert.False(File.Exists($"/var/lib/libvirt/qemu/nvram/{name}_VARS.fd"), "the NVRAM is left");
        if (uuid is not null)
        {
            Assert.False(Directory.Exists($"/var/lib/libvirt/swtpm/{uuid}"), "the TPM state is left");
        }

        if (servePid > 0)
        {
            Assert.False(IsLive(servePid), $"serve (pid {servePid}) still runs");
        }

        var serving = await LabHost.RunAsync("sh", ["-c", $"pgrep -f '[b]oot-{name}/nbd.sock' || true"]);
        Assert.Equal("", serving.Trim());
    }
}
