using System.Text.RegularExpressions;
using VirtBackup.Core.Libvirt;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.IntegrationTests.Reliability;
using VirtBackup.Testing;

namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// Stale boots: a <c>verify --boot</c> killed with SIGKILL (its record says it was being made, its process is gone) and a
/// boot whose server was killed. The next <c>boot</c> removes the stale one whose domain is shut off and only warns about
/// the one whose domain runs; <c>repair --boots</c> removes that one (domain, overlays, NVRAM, TPM state, server, run
/// directory) and leaves the healthy boot alone.
/// </summary>
[Collection(LabCollection.Name)]
public sealed partial class StaleBootLabTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-stale-").FullName;

    [Fact(Timeout = 400_000)]
    public async Task A_killed_verify_boot_is_removed_by_repair_and_a_boot_whose_server_died_by_the_next_boot_while_a_healthy_boot_stays()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        var full = await BootLabTests.BackupAsync(vm, "full", _work);
        var dead = $"{vm.Name}-d";
        var next = $"{vm.Name}-n";
        string? killed = null;
        try
        {
            using (var verify = CliProcess.Start(["verify", "--boot", "--timeout", "300", "--expect-console", "never-printed", full]))
            {
                await verify.WaitForStderrAsync("booted vbverify-", TimeSpan.FromSeconds(120));
                killed = VerifyName().Match(verify.StandardError).Groups[1].Value;
                verify.Signal(Signals.Kill);
                await verify.WaitForExitAsync(TimeSpan.FromSeconds(30));
            }

            var killedUuid = Uuid(killed);
            var killedServer = BootLabTests.ServePid(killed);
            var booted = await VirtBackupCli.RunAsync(["boot", "--as", dead, full]);
            Assert.True(booted.ExitCode == 0, $"boot failed ({booted.ExitCode}): {booted.StandardError}");
            var deadServer = BootLabTests.ServePid(dead);
            await LabHost.RunAsync("kill", ["-KILL", deadServer.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "destroy", dead]);

            var nextBoot = await VirtBackupCli.RunAsync(["boot", "--as", next, full]);

            Assert.True(nextBoot.ExitCode == 0, $"the next boot failed ({nextBoot.ExitCode}): {nextBoot.StandardError}");
            Assert.Contains($"removing stale boot {dead}: its server (pid {deadServer}) is gone", nextBoot.StandardError);
            Assert.Contains($"boot {killed} is stale (the virtbackup process that made it (pid ", nextBoot.StandardError);
            Assert.Contains("but its domain runs: virtbackup repair --boots", nextBoot.StandardError);
            await BootLabTests.AssertNothingLeftAsync(dead, null, deadServer);
            Assert.True(Directory.Exists($"/run/virtbackup/boot-{killed}"), "the next boot removed a stale boot whose domain runs");

            var repair = await VirtBackupCli.RunAsync(["repair", "--boots"]);

            Assert.True(repair.ExitCode == 0, $"repair --boots failed ({repair.ExitCode}): {repair.StandardError}");
            Assert.Contains($"removing stale boot {killed}: the virtbackup process that made it (pid ", repair.StandardError);
            Assert.Contains($"removed boot {killed} ({killedUuid})", repair.StandardError);
            Assert.DoesNotContain($"stale boot {next}", repair.StandardError);
            await BootLabTests.AssertNothingLeftAsync(killed, killedUuid, killedServer);
            Assert.False(Directory.Exists($"/run/virtbackup/boot-{killed}"), "the killed verify's run directory is left");
            using var libvirt = LibvirtConnection.Open();
            using var healthy = libvirt.LookupByName(next);
            Assert.Equal(DomainState.Running, healthy.GetState().State);
            Assert.True(BootLabTests.IsLive(BootLabTests.ServePid(next)), "repair stopped the healthy boot's server");
        }
        finally
        {
            await VirtBackupCli.RunAsync(["boot", "--stop", next]);
            await VirtBackupCli.RunAsync(["boot", "--stop", dead]);
            if (killed is { Length: > 0 })
            {
                await VirtBackupCli.RunAsync(["boot", "--stop", killed]);
            }
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static string Uuid(string name) =>
        (string)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText($"/run/virtbackup/boot-{name}/boot.json"))!["uuid"]!;

    [GeneratedRegex("booted (vbverify-[0-9a-f]{8})")]
    private static partial Regex VerifyName();
}
