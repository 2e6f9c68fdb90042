using System.Diagnostics;
using Serilog;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>
/// One backup of one domain into one stream: decide the level, capture disks + NVRAM + TPM at one
/// instant, stream the disks while the guest runs, finish the trailer, end the job, advance the chain.
/// The domain runs on <paramref name="host"/>: this machine, or a remote one reached over SSH.
/// </summary>
public sealed partial class BackupRun(LibvirtConnection libvirt, IHypervisorHost host, ILogger log)
{
    /// <summary>A backup of a domain on this machine, its state files read through <paramref name="files"/>.</summary>
    public BackupRun(LibvirtConnection libvirt, IHostFiles files, ILogger log)
        : this(libvirt, new LocalHypervisorHost(files), log)
    {
    }

    /// <summary>Bytes of disk data streamed so far; a no-op unless set.</summary>
    public IProgress<BackupProgress>? Progress { get; init; }

    /// <summary>Called at each phase boundary; tests stop the process there (VIRTBACKUP_TEST_PAUSE_AT).</summary>
    public PhaseHook? Phases { get; init; }

    /// <summary>TEST ONLY: see <see cref="ConsistentCapture.BrokenOrderStateReadDelay"/>.</summary>
    public TimeSpan? BrokenOrderStateReadDelay { get; init; }

    public async Task<BackupResult> RunAsync(BackupOptions options, System.IO.Stream output, CancellationToken cancellationToken)
    {
        var warmUp = BackupStreamWriter.WarmUpAsync();
        try
        {
            return await RunCoreAsync(options, output, cancellationToken);
        }
        finally
        {
            await warmUp; // even after a failure: see WarmUpAsync
        }
    }

    private async Task<BackupResult> RunCoreAsync(BackupOptions options, System.IO.Stream output, CancellationToken cancellationToken)
    {
        var elapsed = Stopwatch.StartNew();
        using var domain = libvirt.LookupByName(options.Domain);
        var xml = DomainXml.Parse(domain.GetXml());
        log.Debug("phase: domain looked up and parsed");
        var selection = DiskSelection.Of(xml, options.ExcludeDisks);
        var store = new ChainStore(options.StateDirectory, options.Chain);
        var domainDirectory = store.EnsureDirectory(domain.Uuid);
        using var domainLock = DomainLock.Acquire(domainDirectory, domain.Name);
        var markers = new CaptureMarkers(domainDirectory);
        var leftovers = new HostLeftovers(domainDirectory);
        await using var recovery = new FailedRunRecovery(libvirt, domain.Uuid, domain.Name, markers, store, log);
        recovery.TrackHost(host, leftovers);
        await new DomainRepair(domain, markers, leftovers, host, log).RunAsync(cancellationToken);
        var state = StateLocation.Of(xml, await host.ReadQemuConfAsync(cancellationToken));
        var capture = new ConsistentCapture(host.Files, markers, log) { Phases = Phases, BrokenOrderStateReadDelay = BrokenOrderStateReadDelay };
        await Phases.ReachAsync(BackupPhase.Preflight, cancellationToken);
        await capture.PreflightAsync(state, cancellationToken);
        log.Debug("phase: repair checked, preflight passed");
        if (!domain.IsActive())
        {
            return await OfflineAsync(domain, xml, selection, state, store, options, output, cancellationToken);
        }

        await PreflightScratchAsync(options.ScratchDirectory, cancellationToken);
        // Made while the chain is planned; removed after the job ended (disposed after it).
        await using var scratch = ScratchImages.Start(
            host, domain, [.. selection.Included.Select(d => (d.Target, ScratchFile(options, domain, d.Target)))], xml.QemuProcessIds, leftovers, log);
        await using var endpoint = await JobEndpoint.OpenAsync(host, options, domain.Uuid, xml.QemuProcessIds, leftovers, log, cancellationToken);
        var checkpoints = new LiveCheckpoints(domain);
        var chain = new ChainPlanApplier(domain, store, checkpoints, log);
        var plan = await chain.ApplyAsync(
            await new ChainPlanner(domain, store, checkpoints, log).PlanAsync(options.Level, selection.BitmapTargets, cancellationToken),
            cancellationToken);
        log.Debug("phase: chain planned");
        recovery.Track(endpoint.Server, plan.Checkpoint);
        log.Information("backing up {Domain} ({Uuid}) as {Level}: {Reason}", domain.Name, domain.Uuid, plan.Level, plan.Reason);
        var definition = domain.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
        var jobDisks = selection.Included
            .Select(d => new BackupJobDisk(d.Target, ScratchFile(options, domain, d.Target), d.DriverType == "qcow2"))
            .ToList();
        var excluded = selection.Excluded.Select(d => d.Target).ToList();
        var request = new CaptureRequest(
            domain,
            state,
            BackupJobXml.Backup(endpoint.Server, jobDisks, excluded, plan.Parent),
            plan.Checkpoint is null ? null : BackupJobXml.Checkpoint(plan.Checkpoint, jobDisks, excluded),
            plan.Checkpoint,
            options.Freeze)
        {
            BeginFlags = await scratch.BeginFlagsAsync(),
        };

        await using var job = new BackupJob(domain, plan.Checkpoint, log);
        log.Debug("phase: planned");
        var captured = await capture.RunAsync(request, job.Started, cancellationToken);
        var disks = new List<DiskSource>();
        try
        {
            foreach (var disk in jobDisks)
            {
                var bitmap = plan.Level is BackupLevel.Inc or BackupLevel.Diff && disk.Bitmaps ? $"backup-{disk.Target}" : null;
                disks.Add(await DiskStreamer.OpenAsync(disk.Target, endpoint.Export(disk.Target), bitmap, endpoint.Tls, cancellationToken));
            }

            log.Debug("phase: disks connected and mapped");
            var manifest = ManifestBuilder.Build(xml, selection, disks, plan, state, captured, options.Stream, options.Warnings);
            await WriteStreamAsync(output, options.Stream, manifest, definition, state, captured, disks, job, cancellationToken);
            log.Debug("phase: stream written, job ended");
            if (plan.Checkpoint is not null)
            {
                chain.Commit(plan, selection.BitmapTargets);
                job.Commit();
            }

            var dataBytes = disks.Sum(d => d.DataBytes);
            log.Information(
                "backup of {Domain} complete: {Level}, {DataMiB:F1} MiB of disk data in {Seconds:F1} s, paused {PauseMs} ms",
                domain.Name, plan.Level, dataBytes / 1048576.0, elapsed.Elapsed.TotalSeconds, captured.PauseWindowMs);
            recovery.Succeeded();
            return new BackupResult(manifest, dataBytes, elapsed.Elapsed);
        }
        catch (NbdException e)
        {
            if (await DomainStoppedException.HasStoppedAsync(domain))
            {
                throw new DomainStoppedException(domain.Name, e);
            }

            throw;
        }
        finally
        {
            foreach (var disk in disks)
            {
                await disk.Reader.DisposeAsync();
            }
        }
    }

    private async Task WriteStreamAsync(
        System.IO.Stream output,
        StreamWriterOptions streamOptions,
        Manifest manifest,
        string definition,
        StateLocation state,
        CapturedState captured,
        IReadOnlyList<DiskSource> disks,
        BackupJob? job,
        CancellationToken cancellationToken)
    {
        var total = disks.Sum(d => d.DataBytes);
        long done = 0;
        await using var writer = new BackupStreamWriter(output, streamOptions);
        await writer.WriteManifestAsync(manifest, cancellationToken);
        await writer.WriteDomainXmlAsync(definition, cancellationToken);
        if (captured.Nvram is { } nvram)
        {
            await writer.WriteNvramAsync(Path.GetFileName(state.NvramPath!), nvram, cancellationToken);
        }

        foreach (var file in captured.TpmFiles)
        {
            await writer.WriteTpmFileAsync(file.RelativePath, file.Content, cancellationToken);
        }

        await Phases.ReachAsync(BackupPhase.Streaming, cancellationToken);
        foreach (var disk in disks)
        {
            await DiskStreamer.StreamAsync(
                disk,
                writer,
                bytes => Progress?.Report(new BackupProgress(done += bytes, total)),
                cancellationToken);
        }

        log.Debug("phase: disks read");
        await Phases.ReachAsync(BackupPhase.Finishing, cancellationToken);
        // The job (none for a shut-off domain) ends before the trailer is written: a stream is never complete while its job may still be left
        // behind. Ending it is cleanup, so no signal interrupts it (it has its own deadline).
        if (job is not null)
        {
            await job.EndAsync(CancellationToken.None);
            log.Debug("phase: job ended");
        }

        await writer.CompleteAsync(cancellationToken);
        await output.FlushAsync(CancellationToken.None); // the trailer is out: a signal now must not undo the chain's advance
    }

    /// <summary>QEMU creates the scratch files when the job begins: a missing directory is said before the VM is touched.</summary>
    private async Task PreflightScratchAsync(string scratchDirectory, CancellationToken cancellationToken)
    {
        if (!Path.IsPathRooted(scratchDirectory))
        {
            throw new BackupRefusedException($"--scratch-dir must be an absolute path on the libvirt host, not '{scratchDirectory}'");
        }

        if (!await host.Files.ExistsAsync(scratchDirectory, cancellationToken))
        {
            throw new BackupRefusedException(
                $"the scratch directory '{scratchDirectory}' does not exist; create it (on a file system with room for what the guest writes during a backup) or pass another --scratch-dir. The VM was not touched");
        }
    }

    private static string ScratchFile(BackupOptions options, Domain domain, string target) =>
        ScratchImages.PathFor(options.ScratchDirectory, domain.Uuid, target);
}
