using System.Diagnostics;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// A shut-off domain: nothing runs, so nothing needs pausing. Each disk image is served read-only by a private
/// qemu-nbd on the domain's host (whose image lock also keeps the domain from starting while it is read), NVRAM and TPM
/// state are read as they lie. The level is decided like a running domain's, from the chain and the persistent bitmaps
/// libvirt left in the qcow2 images: an incremental reads the dirty ∩ allocated ranges of bitmap C (the last committed
/// checkpoint), exported by qemu-nbd; a differential those of the chain's full's bitmap F, which, like every bitmap of the
/// chain, stayed enabled and so recorded every write since F (no merge of bitmaps is needed). A full, incremental or diff first creates the next checkpoint the way libvirt would
/// (<see cref="OfflineCheckpoints"/>: a new enabled bitmap in every qcow2 disk, then libvirt's record redefined), and the
/// chain advances only once the stream is complete; otherwise <see cref="OfflineCheckpoint"/> removes both again.
/// </summary>
public sealed partial class BackupRun
{
    private async Task<BackupResult> OfflineAsync(
        Domain domain,
        DomainXml xml,
        DiskSelection selection,
        StateLocation state,
        ChainStore store,
        BackupOptions options,
        System.IO.Stream output,
        CancellationToken cancellationToken)
    {
        var elapsed = Stopwatch.StartNew();
        var qcow2 = selection.Included.Where(d => d.DriverType == "qcow2").ToList();
        var checkpoints = new OfflineCheckpoints(domain, host.Images, qcow2, log);
        var chain = new ChainPlanApplier(domain, store, checkpoints, log);
        var plan = await chain.ApplyAsync(
            await new ChainPlanner(domain, store, checkpoints, log).PlanAsync(options.Level, selection.BitmapTargets, cancellationToken),
            cancellationToken);
        log.Information("backing up shut-off {Domain} ({Uuid}) as {Level}: {Reason}", domain.Name, domain.Uuid, plan.Level, plan.Reason);
        var definition = domain.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
        var captured = await ReadStateFilesAsync(state, cancellationToken);
        await using var checkpoint = new OfflineCheckpoint(checkpoints, plan.Checkpoint, domain.Name, log);
        if (plan.Checkpoint is { } name)
        {
            var others = xml.Disks.Where(d => d.Device == DiskDevice.Disk).Select(d => d.Target).Except(selection.BitmapTargets).ToList();
            // libvirt's parent is the chain's last checkpoint, as libvirt makes it for a running domain (a diff's changes
            // are relative to the full, but it still follows the last checkpoint in libvirt's tree).
            await checkpoint.CreateAsync(
                CheckpointXml.Redefinition(name, plan.Previous?.Last?.Name, DateTimeOffset.UtcNow, selection.BitmapTargets, others), cancellationToken);
        }

        var servers = new List<IServedImage>();
        var disks = new List<DiskSource>();
        try
        {
            foreach (var disk in selection.Included)
            {
                var bitmap = plan.Level is BackupLevel.Inc or BackupLevel.Diff && disk.DriverType == "qcow2" ? plan.Parent : null;
                var server = await host.Images.ServeAsync(disk.SourcePath!, disk.DriverType!, readOnly: true, bitmap, cancellationToken);
                servers.Add(server);
                disks.Add(await DiskStreamer.OpenAsync(disk.Target, NbdUri.Unix(server.SocketPath), bitmap, tls: null, cancellationToken));
            }

            if (domain.IsActive())
            {
                throw new BackupRefusedException(
                    $"'{domain.Name}' was started while its shut-off backup began: run the backup again (it will take the running domain's way)");
            }

            var manifest = ManifestBuilder.Build(xml, selection, disks, plan, state, captured, options.Stream, options.Warnings);
            manifest = manifest with { Warnings = [.. manifest.Warnings, OfflineWarning(plan)] };
            await WriteStreamAsync(output, options.Stream, manifest, definition, state, captured, disks, job: null, cancellationToken);
            if (plan.Checkpoint is not null)
            {
                chain.Commit(plan, selection.BitmapTargets);
                checkpoint.Commit();
            }

            var dataBytes = disks.Sum(d => d.DataBytes);
            log.Information(
                "backup of shut-off {Domain} complete: {Level}, {DataMiB:F1} MiB of disk data in {Seconds:F1} s",
                domain.Name, plan.Level, dataBytes / 1048576.0, elapsed.Elapsed.TotalSeconds);
            return new BackupResult(manifest, dataBytes, elapsed.Elapsed);
        }
        finally
        {
            foreach (var disk in disks)
            {
                await disk.Reader.DisposeAsync();
            }

            foreach (var server in servers)
            {
                await server.DisposeAsync(); // before the checkpoint's rollback, which needs the images unlocked
            }
        }
    }

    /// <summary>NVRAM and TPM state as they lie: nothing runs that could change them.</summary>
    private async Task<CapturedState> ReadStateFilesAsync(StateLocation state, CancellationToken cancellationToken)
    {
        var nvram = state.NvramPath is { } nvramPath && await host.Files.ExistsAsync(nvramPath, cancellationToken)
            ? await host.Files.ReadFileAsync(nvramPath, cancellationToken)
            : null;
        var tpm = state.TpmStateDirectory is { } tpmDirectory && await host.Files.ExistsAsync(tpmDirectory, cancellationToken)
            ? await host.Files.ReadTreeAsync(tpmDirectory, cancellationToken)
            : [];
        return new CapturedState(nvram, tpm, 0, FreezeState.Off);
    }

    private static string OfflineWarning(ChainPlan plan) => plan.Level switch
    {
        BackupLevel.Inc => $"the domain was shut off: its disks were read through qemu-nbd, the changes since {plan.Parent} from the images' bitmaps; checkpoint {plan.Checkpoint} was added to them",
        BackupLevel.Diff => $"the domain was shut off: its disks were read through qemu-nbd, the changes since the chain's full {plan.Parent} from the images' bitmaps; checkpoint {plan.Checkpoint} was added to them",
        BackupLevel.Full => $"the domain was shut off: its disks were read through qemu-nbd; checkpoint {plan.Checkpoint} was added to them",
        _ => "the domain was shut off: its disks were read through qemu-nbd, no checkpoint was made",
    };
}
