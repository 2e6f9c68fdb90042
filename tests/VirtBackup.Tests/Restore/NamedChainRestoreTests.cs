using System.Text;
using VirtBackup.Core.Recovery;
using VirtBackup.Core.Restore;
using VirtBackup.Core.Stream;
using VirtBackup.Testing;
using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Restore;

/// <summary>Streams of a domain's named chains: the manifest says the chain, and no restore or serve mixes two chains.</summary>
public class NamedChainRestoreTests
{
    private static StreamSpec Onsite => ChainFixtures.Full("aaaaaaaaaaaa") with { Chain = "onsite" };

    private static StreamSpec Offsite => ChainFixtures.Full("bbbbbbbbbbbb") with { Chain = "offsite" };

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_of_another_named_chain_of_the_domain_is_refused_naming_both_chains()
    {
        using var tree = new RestoredTree();
        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(Onsite), tree.Root);
        var before = tree.Snapshot();

        var e = await Assert.ThrowsAsync<ChainGapException>(async () =>
            await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(ChainFixtures.Next(Offsite, 2, 100)), tree.Root));

        Assert.Contains("it is a backup of chain 'offsite', but 'win11' was restored from chain 'onsite' (up to checkpoint 'virtbackup-aaaaaaaaaaaa-0001' of chain 'aaaaaaaaaaaa' (chain 'onsite')", e.Message);
        Assert.Contains("a domain's chains are independent and their streams never mix. Apply only streams of chain 'onsite', or restore a full of chain 'offsite' first (--force)", e.Message);
        Assert.Equal(before, tree.Snapshot());
    }

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_of_a_named_chain_onto_the_unnamed_chain_is_refused()
    {
        using var tree = new RestoredTree();
        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(ChainFixtures.Full("aaaaaaaaaaaa")), tree.Root);

        var e = await Assert.ThrowsAsync<ChainGapException>(async () =>
            await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(ChainFixtures.Next(Offsite, 2, 100)), tree.Root));

        Assert.Contains("it is a backup of chain 'offsite', but 'win11' was restored from the unnamed chain", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_named_chain_restores_its_full_and_incrementals_in_order()
    {
        using var tree = new RestoredTree();
        var inc = ChainFixtures.Next(Offsite, 2, 100);

        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(Offsite), tree.Root);
        await ChainFixtures.RestoreAsync(await ChainFixtures.BuildAsync(inc), tree.Root);

        Assert.Equal(ChainFixtures.Image(inc, "vda"), File.ReadAllBytes(tree.Disk("vda")));
    }

    [Fact(Timeout = 60_000)]
    public async Task Serve_refuses_a_chain_of_streams_of_two_named_chains()
    {
        using var directory = new TestDirectory();
        var full = directory.File("onsite-full.tar");
        var inc = directory.File("offsite-inc.tar");
        await File.WriteAllBytesAsync(full, await ChainFixtures.BuildAsync(Onsite));
        await File.WriteAllBytesAsync(inc, await ChainFixtures.BuildAsync(ChainFixtures.Next(Offsite, 2, 100)));

        var e = Assert.Throws<ChainGapException>(() => ChainIndex.Open([full, inc]));

        Assert.Contains("it is a backup of chain 'offsite', but full stream 'virtbackup-aaaaaaaaaaaa-0001'", e.Message);
        Assert.Contains("is of chain 'onsite'; a domain's chains are independent and their streams never mix. Give only streams of chain 'onsite'", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task List_and_verify_show_the_chain_name()
    {
        var stream = await ChainFixtures.BuildAsync(ChainFixtures.Next(Offsite, 2, 100));

        var list = await VirtBackupCli.RunAsync(["list"], new MemoryStream(stream));
        var verify = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(stream));

        Assert.Equal((0, 0), (list.ExitCode, verify.ExitCode));
        Assert.Contains("\nchain        bbbbbbbbbbbb\nchain-name   offsite\n", Encoding.UTF8.GetString(list.StandardOutput));
        Assert.Contains("chain bbbbbbbbbbbb (offsite), taken", verify.StandardError);
    }
}
