using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VirtBackup.Core.Libvirt;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.Testing;

namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// <c>virtbackup boot --live-restore</c> of the agent VM from a full and an incremental: the guest runs at once, its data
/// is pulled into local images while it runs, and at the end it is an ordinary domain (local images without a backing
/// file, persistent definition naming them, no server) whose untouched disk equals the source at the backup instant.
/// </summary>
[Collection(LabCollection.Name)]
public sealed partial class LiveRestoreLabTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-live-").FullName;

    [Fact(Timeout = 600_000)]
    public async Task Live_restore_of_the_agent_vm_ends_with_local_images_equal_to_the_source_no_backing_file_no_server_and_the_agent_answering()
    {
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", agent: true);
        var name = $"{vm.Name}-l";
        var disks = Directory.CreateTempSubdirectory("vbt-live-disks-").FullName;
        await vm.InjectWriteAsync("vdb", "1M", "3M", "0x5a");
        var full = await BootLabTests.BackupAsync(vm, "full", _work);
        await vm.WriteGuestFileAsync($"{LabVm.GuestMountPoint}/marker.txt", Encoding.ASCII.GetBytes("written before the incremental\n"));
        await vm.AgentCommandAsync("guest-exec", new { path = "/bin/sync" });
        await vm.AgentCommandAsync("guest-fsfreeze-freeze");
        await vm.AgentCommandAsync("guest-fsfreeze-thaw");
        await vm.InjectWriteAsync("vdb", "2M", "1M", "0x77");
        await vm.InjectWriteAsync("vdb", "40M", "64k", "0x11");
        var inc = await BootLabTests.BackupAsync(vm, "inc", _work);
        try
        {
            var refused = await VirtBackupCli.RunAsync(["boot", "--as", name, "--live-restore", "--disk-dir", disks, full, inc]);
            Assert.True(refused.ExitCode == 4, $"a 0700 disk directory was not refused ({refused.ExitCode}): {refused.StandardError}");
            Assert.Contains($"cannot enter '{disks}'", refused.StandardError);
            File.SetUnixFileMode(disks, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);

            var clock = Stopwatch.StartNew();
            var restored = await VirtBackupCli.RunAsync(["boot", "--as", name, "--live-restore", "--disk-dir", disks, full, inc]);
            var seconds = clock.Elapsed.TotalSeconds;

            Assert.True(restored.ExitCode == 0, $"boot --live-restore failed ({restored.ExitCode}): {restored.StandardError}");
            Console.Error.WriteLine($"boot --live-restore of {name}: {seconds:F1} s");
            Assert.Contains($"live restore of {name}: vda 100% (", restored.StandardError);
            Assert.Contains($"live restore of {name}: vdb 100% (", restored.StandardError);
            Assert.Contains($"live restore of {name} done in ", restored.StandardError);
            var servePid = int.Parse(ServedBy().Match(restored.StandardError).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.False(BootLabTests.IsLive(servePid), $"serve (pid {servePid}) still runs");
            Assert.Equal("", (await LabHost.RunAsync("sh", ["-c", $"pgrep -f '[s]erve --socket /run/virtbackup/boot-{name}/nbd.sock' || true"])).Trim());
            Assert.False(Directory.Exists($"/run/virtbackup/boot-{name}"), "the run directory is left");

            using var libvirt = LibvirtConnection.Open();
            using var domain = libvirt.LookupByName(name);
            Assert.Equal(DomainState.Running, domain.GetState().State);
            Assert.True(domain.IsPersistent());
            foreach (var xml in new[] { domain.GetXml(), domain.GetXml(DomainXmlFlags.Inactive) })
            {
                Assert.DoesNotContain("nbd", xml);
                Assert.Contains($"<source file='{disks}/{name}-vda.qcow2'", xml);
                Assert.Contains($"<source file='{disks}/{name}-vdb.qcow2'", xml);
            }

            Assert.DoesNotContain("error_policy", domain.GetXml(DomainXmlFlags.Inactive));
            await BootLabTests.WaitForAgentAsync(name, TimeSpan.FromSeconds(240));
            Assert.Equal("written before the incremental\n", BootLabTests.ReadGuestFile(name, $"{LabVm.GuestMountPoint}/marker.txt"));

            // QEMU keeps the pulled clusters' qcow2 metadata in its cache until a flush: stopped gracefully, it writes it.
            await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "destroy", "--graceful", name]);
            foreach (var target in new[] { "vda", "vdb" })
            {
                var info = await LabHost.RunAsync("qemu-img", ["info", $"{disks}/{name}-{target}.qcow2"]);
                Assert.Contains("file format: qcow2", info);
                Assert.DoesNotContain("backing file", info);
            }

            // vdb is not mounted in the guest: byte for byte the source's vdb at the incremental's instant.
            Assert.Contains("Images are identical.", await LabHost.RunAsync("qemu-img", ["compare", "-U", vm.DiskPath("vdb"), $"{disks}/{name}-vdb.qcow2"]));
            var stop = await VirtBackupCli.RunAsync(["boot", "--stop", name]);
            Assert.Equal(4, stop.ExitCode);
        }
        finally
        {
            await VirtBackupCli.RunAsync(["boot", "--stop", name]);
            await LabHost.RunAsync("sh", ["-c", $"virsh -q -c qemu:///system destroy {name} >/dev/null 2>&1; virsh -q -c qemu:///system undefine --nvram --tpm {name} >/dev/null 2>&1; true"]);
            Directory.Delete(disks, recursive: true);
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [GeneratedRegex(@"served by pid (\d+)")]
    private static partial Regex ServedBy();
}
