namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The "scratch disk full" column of the fault matrix, with <c>--scratch-dir</c> on a 1 MiB tmpfs. virtbackup makes
/// the (empty) scratch images right after the preflight, before the pause; on a full file system that fails, libvirt
/// then makes them when the job begins and backupBegin fails with ENOSPC. Later the scratch only grows with guest
/// writes over not-yet-copied data (copy-before-write); once it is full QEMU fails those guest writes (its default
/// on-cbw-error=break-guest-write) and the backup itself stays consistent.
/// The tmpfs is mounted before the VM starts: QEMU runs in its own mount namespace and sees only mounts it inherited.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class ScratchFullFaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("vbt-scratch-").FullName;

    public async Task InitializeAsync() =>
        await LabHost.RunAsync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0755", "vbt-scratch", _scratch]);

    public async Task DisposeAsync()
    {
        await LabHost.RunAsync("umount", [_scratch]);
        Directory.Delete(_scratch);
    }

    [Fact(Timeout = 300_000)]
    public async Task A_full_scratch_directory_fails_backupBegin_clearly_or_fails_only_the_guest_writes_and_the_state_holds()
    {
        await using var lab = await FaultLab.CreateAsync(_scratch);
        var matrix = new FaultMatrix("scratch disk full", output);
        const string Made = "the scratch images are made right after the preflight: a file system that fills from here on fails only guest writes, see streaming";
        const string Paused = "the guest is paused and cannot write, so the scratch cannot fill now: see streaming";
        await matrix.CellAsync(BackupPhase.Preflight, async () =>
        {
            await lab.ChangeAsync();
            using var backup = await lab.StartAtAsync(BackupPhase.Preflight);
            var filler = Path.Combine(_scratch, "filler");
            await LabHost.RunAsync("bash", ["-c", $"dd if=/dev/zero of='{filler}' bs=64k 2>/dev/null; true"]);
            var ended = backup.EndedAfterAsync();
            backup.Continue();
            var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));
            File.Delete(filler);

            Assert.True(outcome.ExitCode == 3, $"exit {outcome.ExitCode}: {outcome.StandardError}");
            Assert.Contains("virDomainBackupBegin", outcome.StandardError);
            Assert.Contains("No space left on device", outcome.StandardError);
            lab.AssertClean();
            var (level, _) = await lab.NextBackupRestoresByteEqualAsync();
            return $"qemu-img cannot make the scratch, libvirt neither: backupBegin fails: exit 3 in {await ended} ms (No space left on device), clean; next {level} restores equal";
        });
        matrix.NotApplicable(BackupPhase.Freeze, Made);
        matrix.NotApplicable(BackupPhase.Paused, Made);
        matrix.NotApplicable(BackupPhase.BackupBegin, Paused);
        matrix.NotApplicable(BackupPhase.StateRead, Paused);
        foreach (var phase in new[] { BackupPhase.Streaming, BackupPhase.Finishing })
        {
            await matrix.CellAsync(phase, async () =>
            {
                await lab.ChangeAsync();
                var log = $"/var/log/libvirt/qemu/{lab.Vm.Name}.log";
                var logBefore = new FileInfo(log).Length;
                using var backup = await lab.StartAtAsync(phase);
                // 4 MiB over data the job has not copied yet: copy-before-write needs 4 MiB of scratch, the tmpfs has < 1 MiB.
                await lab.Vm.InjectWriteAsync("vda", "8M", "4M", "0x5a");
                backup.Continue();
                var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));

                Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}: {outcome.StandardError}");
                await using (var qemuLog = File.OpenRead(log))
                {
                    qemuLog.Seek(logBefore, SeekOrigin.Begin);
                    Assert.Contains("No space left on device", await new StreamReader(qemuLog).ReadToEndAsync());
                }

                lab.AssertClean();
                var level = await lab.RestoresByteEqualAsync(outcome.StandardOutput);
                var (next, _) = await lab.NextBackupRestoresByteEqualAsync();
                return $"the guest's 4 MiB write fails (ENOSPC, QEMU's break-guest-write); the backup completes (exit 0, {level}) and restores equal; next {next} too";
            });
        }

        matrix.Complete();
    }
}
