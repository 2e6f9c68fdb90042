using System.Diagnostics;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Disks;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// A shut-off domain: nothing runs, so nothing needs pausing. Each disk image is served read-only by
/// a private qemu-nbd on the domain's host (whose image lock also keeps the domain from starting while it is read), NVRAM and
/// TPM state are read as they lie. libvirt creates no checkpoint for an inactive domain, so the stream is
/// a copy and the chain is left as it is: the next incremental of the running domain still follows it.
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
        if (options.Level == RequestedLevel.Inc)
        {
            throw new BackupRefusedException(
                $"'{domain.Name}' is shut off: an incremental needs a checkpoint, which libvirt creates only for a running domain. Use --level copy (or auto), or start the domain");
        }

        var previous = TryLoad(store, domain.Uuid);
        var plan = new ChainPlan(BackupLevel.Copy, previous?.ChainId, null, null, null, "the domain is shut off: a copy without a checkpoint, the chain is left as it is");
        log.Information("backing up {Domain} ({Uuid}) as {Level}: {Reason}", domain.Name, domain.Uuid, plan.Level, plan.Reason);
        var definition = domain.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
        var nvram = state.NvramPath is { } nvramPath && await host.Files.ExistsAsync(nvramPath, cancellationToken)
            ? await host.Files.ReadFileAsync(nvramPath, cancellationToken)
            : null;
        var tpm = state.TpmStateDirectory is { } tpmDirectory && await host.Files.ExistsAsync(tpmDirectory, cancellationToken)
            ? await host.Files.ReadTreeAsync(tpmDirectory, cancellationToken)
            : [];
        var captured = new CapturedState(nvram, tpm, 0, FreezeState.Off);
        var servers = new List<IServedImage>();
        var disks = new List<DiskSource>();
        try
        {
            foreach (var disk in selection.Included)
            {
                var server = await host.Images.ServeAsync(disk.SourcePath!, disk.DriverType!, readOnly: true, cancellationToken);
                servers.Add(server);
                disks.Add(await DiskStreamer.OpenAsync(disk.Target, NbdUri.Unix(server.SocketPath), null, cancellationToken));
            }

            var manifest = ManifestBuilder.Build(xml, selection, disks, plan, state, captured, options.Stream);
            manifest = manifest with { Warnings = [.. manifest.Warnings, "the domain was shut off: its disks were read through qemu-nbd, no checkpoint was made"] };
            await WriteStreamAsync(output, options.Stream, manifest, definition, state, captured, disks, job: null, cancellationToken);
            var dataBytes = disks.Sum(d => d.DataBytes);
            log.Information(
                "backup of shut-off {Domain} complete: copy, {DataMiB:F1} MiB of disk data in {Seconds:F1} s",
                domain.Name, dataBytes / 1048576.0, elapsed.Elapsed.TotalSeconds);
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
                await server.DisposeAsync();
            }
        }
    }

    private ChainState? TryLoad(ChainStore store, string uuid)
    {
        try
        {
            return store.Load(uuid);
        }
        catch (ChainStateException e)
        {
            log.Warning("{Message}", e.Message);
            return null;
        }
    }
}
