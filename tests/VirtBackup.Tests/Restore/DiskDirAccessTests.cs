using Serilog;
using Serilog.Core;
using Serilog.Events;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>The restore's check that QEMU can traverse every directory down to --disk-dir (issue 10, defect 4).</summary>
public class DiskDirAccessTests
{
    private static readonly QemuIdentity Qemu = new("libvirt-qemu", 64055, [64055, 108]);

    [Theory]
    [InlineData(0, 0, "0755", null)] // others may enter
    [InlineData(0, 0, "1777", null)] // /tmp
    [InlineData(0, 0, "0700", "o+x")] // mktemp -d as root
    [InlineData(0, 0, "0710", "o+x")] // a group QEMU is not in
    [InlineData(0, 108, "0710", null)] // a supplementary group of QEMU's (kvm)
    [InlineData(0, 64055, "0750", null)] // QEMU's own group
    [InlineData(0, 108, "0701", "g+x")] // QEMU's group decides, even though others may enter
    [InlineData(64055, 0, "0100", null)] // QEMU's own directory
    [InlineData(64055, 108, "0077", "u+x")] // the owner's bits decide for the owner
    public void Qemu_may_traverse_a_directory_by_the_owner_group_or_other_x_bit_that_applies_to_it(int uid, int gid, string mode, string? chmod)
    {
        var directory = new HostPathOwnership("/srv/vms", uid, gid, (UnixFileMode)Convert.ToInt32(mode, 8));

        var blocked = DiskDirAccess.FirstUnreachable(Qemu, [new HostPathOwnership("/", 0, 0, (UnixFileMode)0b111_101_101), directory]);

        Assert.Equal(chmod is null ? null : directory, blocked);
        if (chmod is not null)
        {
            Assert.Contains($"Run chmod {chmod} /srv/vms to let it in,", DiskDirAccess.Problem(Qemu, directory, "/srv/vms/images", string.Empty));
        }
    }

    [Fact]
    public void The_outermost_unreachable_directory_is_named_and_qemu_as_root_is_not_checked()
    {
        var directories = new[]
        {
            new HostPathOwnership("/", 0, 0, (UnixFileMode)0b111_101_101),
            new HostPathOwnership("/a", 0, 0, (UnixFileMode)0b111_000_000),
            new HostPathOwnership("/a/b", 0, 0, (UnixFileMode)0b111_000_000),
        };

        Assert.Equal(directories[1], DiskDirAccess.FirstUnreachable(Qemu, directories));
        Assert.Null(DiskDirAccess.FirstUnreachable(new QemuIdentity("+0", 0, [0]), directories));
    }

    [Fact]
    public void The_problem_names_the_user_its_ids_the_directory_its_owner_and_mode_and_the_command_to_run()
    {
        var message = DiskDirAccess.Problem(Qemu, new HostPathOwnership("/tmp/tmp.x y", 0, 0, (UnixFileMode)0b111_000_000), "/tmp/tmp.x y/disks", " on root@vmhost:22");

        Assert.Equal(
            "QEMU runs as libvirt-qemu (uid 64055, groups 64055,108) on root@vmhost:22 and cannot enter '/tmp/tmp.x y' (owner 0:0, mode 0700: no x for others), "
            + "so a domain whose disks are in '/tmp/tmp.x y/disks' would not start. Run chmod o+x '/tmp/tmp.x y' to let it in, "
            + "or restore with --disk-dir into a directory QEMU can reach (default /var/lib/libvirt/images)",
            message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_private_directory_on_this_host_is_refused_with_define_only_warned_about_without_and_accepted_once_others_may_enter()
    {
        using var temp = new TempDir();
        var diskDir = Path.Combine(temp.Path, "private", "disks");
        Directory.CreateDirectory(Path.Combine(temp.Path, "private"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(temp.Path, (UnixFileMode)0b111_101_101);
        var sink = new WarningSink();
        // A uid and gid no account has: QEMU is then "others" for every directory the test made.
        var access = new DiskDirAccess(
            new LocalHypervisorHost(),
            new QemuConf("tss", "tss") { User = "+64999", Group = "+64999" },
            new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger());
        var expected = $"QEMU runs as +64999 (uid 64999, groups 64999) and cannot enter '{temp.Path}/private' (owner {Owner(Path.Combine(temp.Path, "private"))}, "
            + $"mode 0700: no x for others), so a domain whose disks are in '{diskDir}' would not start. Run chmod o+x {temp.Path}/private to let it in, "
            + "or restore with --disk-dir into a directory QEMU can reach (default /var/lib/libvirt/images)";

        var refused = await Assert.ThrowsAsync<RestoreRefusedException>(() => access.CheckAsync(diskDir, define: true, CancellationToken.None));
        await access.CheckAsync(diskDir, define: false, CancellationToken.None);
        File.SetUnixFileMode(Path.Combine(temp.Path, "private"), (UnixFileMode)0b111_000_001);
        await access.CheckAsync(diskDir, define: true, CancellationToken.None);

        Assert.Equal(expected + ". Nothing was written", refused.Message);
        Assert.Equal([expected + ". The restore goes on (without --define): fix this before defining and starting the domain"], sink.Warnings);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("+64999", "+64999", false, "dynamic_ownership = 0 in qemu.conf on this host: libvirt will not give the restored images (this user's, mode 0600) to QEMU's user +64999: chown them to it before starting the domain")]
    [InlineData("+64999", "+64999", true, null)]
    [InlineData("+0", "+0", false, null)] // QEMU as root reads any image
    [InlineData("no user", "+1", false, null)] // not an account: nothing is checked
    public async Task Only_dynamic_ownership_off_with_qemu_not_root_adds_a_warning_about_the_images_of_a_reachable_directory(string user, string group, bool dynamic, string? warning)
    {
        using var temp = new TempDir();
        File.SetUnixFileMode(temp.Path, (UnixFileMode)0b111_101_101);
        var sink = new WarningSink();
        var access = new DiskDirAccess(
            new LocalHypervisorHost(),
            new QemuConf("tss", "tss") { User = user, Group = group, DynamicOwnership = dynamic },
            new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger());

        await access.CheckAsync(Path.Combine(temp.Path, "disks"), define: true, CancellationToken.None);

        Assert.Equal(warning is null ? [] : [warning], sink.Warnings);
    }

    private static string Owner(string path) => VirtBackup.Core.Platform.Posix.Ownership(path) is { } owned ? $"{owned.Uid}:{owned.Gid}" : "none";

    private sealed class WarningSink : ILogEventSink
    {
        public List<string> Warnings { get; } = [];

        public void Emit(LogEvent logEvent)
        {
            if (logEvent.Level == LogEventLevel.Warning)
            {
                Warnings.Add(logEvent.RenderMessage().Replace("\"", string.Empty));
            }
        }
    }
}
