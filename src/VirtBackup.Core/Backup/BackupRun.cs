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
/// One backup of one domain into one stream: decide the level, capture disks + NVRAM + TPM at one instant, stream the
/// disks, finish the trailer, advance the chain. A running and a shut-off domain take the same steps here; where they
/// differ (a pull-mode job and a consistent capture, or qemu-nbd on the images and the state files as they lie) an
/// <see cref="IBackupSource"/> does it. The domain runs on <paramref name="host"/>: this machine, or a remote one reached over SSH.
/// </summary>
public sealed class BackupRun(LibvirtConnection libvirt, IHypervisorHost host, ILogger log)
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
        var subject = new BackupSubject(domain, xml, selection, state, options, log);
        await using IBackupSource source = domain.IsActive()
            ? await RunningDomainSource.OpenAsync(host, subject, capture, recovery, leftovers, cancellationToken)
            : new ShutOffDomainSource(host, subject);
        return await BackUpAsync(subject, source, store, recovery, output, elapsed, cancellationToken);
    }

    /// <summary>The steps every backup takes, running or shut off; <paramref name="source"/> does the ones that differ.</summary>
    private async Task<BackupResult> BackUpAsync(
        BackupSubject subject, IBackupSource source, ChainStore store, FailedRunRecovery recovery, System.IO.Stream output, Stopwatch elapsed, CancellationToken cancellationToken)
    {
        var (domain, selection, options) = (subject.Domain, subject.Selection, subject.Options);
        var chain = new ChainPlanApplier(domain, store, source.Checkpoints, log);
        var plan = await chain.ApplyAsync(
            await new ChainPlanner(domain, store, source.Checkpoints, log).PlanAsync(options.Level, selection.BitmapTargets, cancellationToken),
            cancellationToken);
        log.Debug("phase: chain planned");
        log.Information("backing up {Kind} {Domain} ({Uuid}) as {Level}: {Reason}", source.Kind, domain.Name, domain.Uuid, plan.Level, plan.Reason);
        var definition = domain.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
        var captured = await source.CaptureAsync(plan, cancellationToken);
        var disks = new List<DiskSource>();
        try
        {
            foreach (var disk in selection.Included)
            {
                var changesOnly = plan.Level is BackupLevel.Inc or BackupLevel.Diff && disk.DriverType == "qcow2";
                var export = await source.ExportAsync(disk, plan, changesOnly, cancellationToken);
                var opened = await DiskStreamer.OpenAsync(disk.Target, export.Uri, export.DirtyBitmap, export.Tls, cancellationToken);
                disks.Add(opened);
                LogWhenMapped(opened);
            }

            source.CheckExported();
            // "Mapped": a full read has mapped its first map piece; the rest is mapped while it reads (LogWhenMapped).
            log.Debug("phase: disks connected and mapped");
            var manifest = ManifestBuilder.Build(subject.Xml, selection, disks, plan, subject.State, captured, options.Stream, options.Warnings);
            manifest = manifest with { Warnings = [.. manifest.Warnings, .. source.Warnings(plan)] };
            await WriteStreamAsync(output, subject, manifest, definition, captured, disks, source, cancellationToken);
            log.Debug("phase: stream written, job ended");
            if (plan.Checkpoint is not null)
            {
                chain.Commit(plan, selection.BitmapTargets);
                source.Commit();
            }

            var dataBytes = disks.Sum(d => d.DataBytes);
            log.Information(
                "backup of {Kind} {Domain} complete: {Level}, {DataMiB:F1} MiB of disk data in {Seconds:F1} s, paused {PauseMs} ms",
                source.Kind, domain.Name, plan.Level, dataBytes / 1048576.0, elapsed.Elapsed.TotalSeconds, captured.PauseWindowMs);
            recovery.Succeeded();
            return new BackupResult(manifest, dataBytes, elapsed.Elapsed);
        }
        catch (NbdException e)
        {
            if (await source.ExplainAsync(e) is { } explained)
            {
                throw explained;
            }

            throw;
        }
        finally
        {
            foreach (var disk in disks)
            {
                await disk.DisposeAsync();
            }
        }
    }

    /// <summary>A full read maps its disk while it reads: says when the mapping is done (benchmarks time it from this line).</summary>
    private void LogWhenMapped(DiskSource disk) => _ = disk.MappedAsync().ContinueWith(
        t =>
        {
            if (t.IsCompletedSuccessfully && t.Result is { } took)
            {
                log.Debug("phase: disk {Target} mapped: {Extents} data extents, {DataMiB:F1} MiB, in {Seconds:F2} s",
                    disk.Target, disk.Discovery!.DataExtents, disk.DataBytes / 1048576.0, took.TotalSeconds);
            }
        },
        CancellationToken.None,
        TaskContinuationOptions.ExecuteSynchronously,
        TaskScheduler.Default);

    private async Task WriteStreamAsync(
        System.IO.Stream output,
        BackupSubject subject,
        Manifest manifest,
        string definition,
        CapturedState captured,
        IReadOnlyList<DiskSource> disks,
        IBackupSource source,
        CancellationToken cancellationToken)
    {
        var total = disks.Sum(d => d.DataBytes);
        long done = 0;
        await using var writer = new BackupStreamWriter(output, subject.Options.Stream);
        await writer.WriteManifestAsync(manifest, cancellationToken);
        await writer.WriteDomainXmlAsync(definition, cancellationToken);
        if (captured.Nvram is { } nvram)
        {
            await writer.WriteNvramAsync(Path.GetFileName(subject.State.NvramPath!), nvram, cancellationToken);
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
        // behind.
        await source.EndAsync();
        await writer.CompleteAsync(cancellationToken);
        await output.FlushAsync(CancellationToken.None); // the trailer is out: a signal now must not undo the chain's advance
    }
}
