using VirtBackup.Core.Platform;

namespace VirtBackup.IntegrationTests.Remote;

/// <summary>What the restore's disk-directory check asks of the host (owners of the directories on the way to a
/// path, QEMU's groups) is answered the same here and over SSH.</summary>
[Collection(SshCollection.Name)]
public class HostAccessLookupTests
{
    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task The_directories_down_to_a_path_come_with_owner_group_and_mode_up_to_the_first_missing_one(string kind)
    {
        using var scratch = SshLab.CreateScratch();
        Directory.CreateDirectory(scratch["a/b"]);
        File.WriteAllText(scratch["a/b/file"], string.Empty);
        Posix.Chown(scratch["a"], 1234, 5678);
        File.SetUnixFileMode(scratch["a"], (UnixFileMode)0b111_000_000);
        File.SetUnixFileMode(scratch["a/b"], (UnixFileMode)0b010_111_101_001);
        await using var host = await HostFilesUnderTest.OpenAsync(kind);

        var missing = await host.Files.StatAncestorsAsync(scratch["a/b/missing/deeper"], CancellationToken.None);
        var throughFile = await host.Files.StatAncestorsAsync(scratch["a/b/file/x"], CancellationToken.None);

        Assert.Equal(HostPathOwnership.Ancestors(scratch["a/b"]), missing.Select(d => d.Path));
        Assert.Equal(new HostPathOwnership("/", 0, 0, (UnixFileMode)0b111_101_101), missing[0]);
        Assert.Equal(new HostPathOwnership(scratch["a"], 1234, 5678, (UnixFileMode)0b111_000_000), missing[^2]);
        Assert.Equal(new HostPathOwnership(scratch["a/b"], Posix.EffectiveUserId, missing[^1].Gid, (UnixFileMode)0b010_111_101_001), missing[^1]);
        Assert.Equal(missing, throughFile);
    }

    [Theory(Timeout = 120_000)]
    [InlineData("local")]
    [InlineData("ssh")]
    public async Task Qemu_s_groups_are_its_configured_group_then_those_id_lists_and_only_the_group_for_an_unknown_user(string kind)
    {
        var gid = Posix.LookupGroup("libvirt-qemu") ?? throw new InvalidOperationException("the lab has no libvirt-qemu group");
        var listed = (await SshLab.RunAsync("id", "-G", "libvirt-qemu")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse).ToList();
        await using var files = await HostFilesUnderTest.OpenAsync(kind);
        IHypervisorHost host = files.Session is { } session ? new SshHypervisorHost(session) : new LocalHypervisorHost();

        var groups = await host.LookupGroupListAsync("libvirt-qemu", 4321, CancellationToken.None);
        var unknown = await host.LookupGroupListAsync("vbt-no-such-user", 4321, CancellationToken.None);

        Assert.Contains(gid, listed);
        Assert.Equal([4321, .. listed.Order()], [groups[0], .. groups.Skip(1).Order()]);
        Assert.Equal([4321], unknown);
    }
}
