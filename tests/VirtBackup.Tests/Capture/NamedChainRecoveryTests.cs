using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;

namespace VirtBackup.Tests.Capture;

/// <summary>The recovery of a failed run of one chain removes that run's checkpoint and nothing of another chain.</summary>
public class NamedChainRecoveryTests
{
    private const string Offsite = "virtbackup-offsite-fedcba987654-0002";

    [Fact(Timeout = 10_000)]
    public async Task The_recovery_of_a_failed_run_of_one_chain_removes_its_checkpoint_and_keeps_the_other_chains_committed_one()
    {
        using var scene = new CaptureScene();
        var offsite = new ChainStore(scene.Store.StateDirectory, "offsite");
        scene.Domain.AddCheckpoint(CaptureScene.Checkpoint);
        scene.Store.Save(new ChainState(scene.Domain.Uuid, "vm1", "0123456789ab", ["vda"],
            [new CommittedCheckpoint(CaptureScene.Checkpoint, null, "full", DateTimeOffset.UnixEpoch, "<domaincheckpoint/>")]));
        scene.Domain.AddCheckpoint(Offsite);

        await using (var recovery = new FailedRunRecovery(scene.Connection, scene.Domain.Uuid, "vm1", scene.Markers, offsite, scene.Log.Logger))
        {
            recovery.Track(scene.Server, Offsite);
        }

        Assert.Equal([CaptureScene.Checkpoint], scene.Domain.CheckpointNames);
        Assert.Contains($"Warning removed checkpoint \"{Offsite}\" of \"vm1\": no completed stream carried it", scene.Log.Lines);
    }

    [Fact(Timeout = 10_000)]
    public async Task The_recovery_keeps_a_checkpoint_its_own_named_chain_committed()
    {
        using var scene = new CaptureScene();
        var offsite = new ChainStore(scene.Store.StateDirectory, "offsite");
        scene.Domain.AddCheckpoint(Offsite);
        offsite.Save(new ChainState(scene.Domain.Uuid, "vm1", "fedcba987654", ["vda"],
            [new CommittedCheckpoint(Offsite, null, "full", DateTimeOffset.UnixEpoch, "<domaincheckpoint/>")])
        { Chain = "offsite" });

        await using (var recovery = new FailedRunRecovery(scene.Connection, scene.Domain.Uuid, "vm1", scene.Markers, offsite, scene.Log.Logger))
        {
            recovery.Track(scene.Server, Offsite);
        }

        Assert.Equal([Offsite], scene.Domain.CheckpointNames);
    }
}
