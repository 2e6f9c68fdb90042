namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The guest goes away while its disks stream: destroyed (virsh destroy), or its QEMU ends on its own as when the
/// guest powers off. The backup fails at once with a clear error; nothing is left but the checkpoint of the run
/// (libvirt deletes no checkpoint of a shut-off domain), which the next run removes once the VM runs again.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class GuestStopTests(ITestOutputHelper output)
{
    [Fact(Timeout = 240_000)]
    public async Task A_guest_destroyed_or_powered_off_while_its_disks_stream_fails_the_backup_clearly_and_the_next_run_cleans_up()
    {
        await using var lab = await FaultLab.CreateAsync();
        var matrix = new FaultMatrix("guest stops", output);
        (string Name, string[] Command)[] stops =
        [
            ("virsh destroy", ["destroy", lab.Vm.Name]),
            ("QEMU quits (guest power-off)", ["qemu-monitor-command", lab.Vm.Name, "--hmp", "quit"]),
        ];
        await lab.NextBackupRestoresByteEqualAsync();
        foreach (var (name, command) in stops)
        {
            await matrix.CellAsync(BackupPhase.Streaming, async () =>
            {
                await lab.ChangeAsync();
                using var backup = await lab.StartAtAsync(BackupPhase.Streaming);
                await StopAsync(lab.Vm.Name, command);
                var ended = backup.EndedAfterAsync();
                backup.Continue();
                var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));
                var left = lab.Describe();

                Assert.True(outcome.ExitCode == 5, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                Assert.Contains($"virtbackup backup failed: '{lab.Vm.Name}' stopped while its disks were being read, so the backup is incomplete", outcome.StandardError, StringComparison.Ordinal);
                Assert.Equal("shutoff, 1 uncommitted checkpoint", left);
                Assert.Contains("is not running, so its uncommitted checkpoint stays until the next virtbackup run for it", outcome.StandardError);
                await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "start", lab.Vm.Name]);
                var (level, log) = await lab.NextBackupRestoresByteEqualAsync();
                Assert.Contains("no completed stream carried it", log);
                return $"{name}: exit 5 in {await ended} ms ('{lab.Vm.Name}' stopped while its disks were being read...); "
                    + $"left: {left}; after virsh start the next backup removes it, is {level} and restores equal";
            });
        }

        matrix.Complete();
        Assert.Equal(DomainState.Running, BackupFixture.Observe(lab.Vm.Name).State);
    }

    /// <summary>
    /// Runs the stop, then waits until libvirt reports the domain shut off. HMP <c>quit</c> may end QEMU before its
    /// answer is sent, so virsh then fails with "Connection reset by peer": the stop happened all the same.
    /// </summary>
    private static async Task StopAsync(string domain, string[] command)
    {
        try
        {
            await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", .. command]);
        }
        catch (LabException e) when (command.Contains("quit") && e.Message.Contains("Connection reset by peer", StringComparison.Ordinal))
        {
        }

        var deadline = DateTime.UtcNow.AddSeconds(15);
        // domstate, not Observe: its job query fails while the domain is half gone.
        while ((await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "domstate", domain])).Trim() != "shut off")
        {
            Assert.True(DateTime.UtcNow < deadline, $"{domain} did not shut off after '{string.Join(' ', command)}'");
            await Task.Delay(50);
        }
    }
}
