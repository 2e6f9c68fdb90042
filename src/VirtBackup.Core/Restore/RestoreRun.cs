using System.Diagnostics;
using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>What a completed restore made.</summary>
/// <param name="Position">The chain position now recorded (which also lists the restored images).</param>
/// <param name="DefinitionPath">The restored domain definition, saved next to the chain position.</param>
/// <param name="Defined">Whether the domain was defined in libvirt.</param>
public sealed record RestoreResult(ChainPosition Position, string DefinitionPath, bool Defined, long DataBytes, TimeSpan Elapsed);

/// <summary>
/// One restore of one stream: plan from the manifest (refusing clashes and chain gaps before writing anything),
/// stage every member as it is read, and commit only once the reader has verified the whole stream — trailer,
/// every checksum, the end of the archive. A stream that is truncated, corrupted or refused at any point leaves
/// nothing behind but the previous state.
/// </summary>
/// <param name="libvirt">For existing domains and <c>--define</c>; null with a target root.</param>
/// <param name="host">Where the files are written: this machine, or the remote host libvirt runs on (over SSH).</param>
/// <param name="qemuConf">That host's qemu.conf (who swtpm runs as).</param>
public sealed class RestoreRun(LibvirtConnection? libvirt, IHypervisorHost host, QemuConf qemuConf, ILogger log)
{
    /// <summary>A restore on this machine.</summary>
    public RestoreRun(LibvirtConnection? libvirt, QemuConf qemuConf, ILogger log)
        : this(libvirt, new LocalHypervisorHost(), qemuConf, log)
    {
    }

    public async Task<RestoreResult> RunAsync(RestoreOptions options, System.IO.Stream input, CancellationToken cancellationToken)
    {
        options.Validate();
        if (libvirt is null && options.TargetRoot is null)
        {
            throw new ArgumentException("a restore into libvirt's own directories needs a libvirt connection", nameof(libvirt));
        }

        var elapsed = Stopwatch.StartNew();
        var reader = new BackupStreamReader(input, new ReaderOptions { StopAtEndOfArchive = options.StopAtEndOfArchive });
        RestoreSession? session = null;
        try
        {
            await foreach (var member in reader.ReadAsync(cancellationToken))
            {
                switch (member)
                {
                    case ManifestMember manifest:
                        var plan = await new RestorePlanner(libvirt, host, qemuConf, log).PlanAsync(manifest.Manifest, options, cancellationToken);
                        if (options.TargetRoot is null)
                        {
                            // Below a target root the files are not where libvirt will look for them: nothing to check there.
                            await new DiskDirAccess(host, qemuConf, log).CheckAsync(plan.Layout.DiskDirectory, options.Define, cancellationToken);
                        }

                        log.Information("restoring {Level} stream of {Source} ({Checkpoint}, taken {Created:u}) as {Name} ({Uuid}) on {Host}",
                            StreamRules.LevelName(manifest.Manifest.Level), manifest.Manifest.DomainName,
                            manifest.Manifest.Checkpoint ?? "no checkpoint", manifest.Manifest.CreatedUtc, plan.Name, plan.Uuid, host.Display);
                        session = new RestoreSession(plan, host, log);
                        break;
                    case DomainXmlMember xml:
                        session!.DomainXml = xml.Xml;
                        break;
                    case NvramMember nvram:
                        session!.StageNvram(nvram);
                        break;
                    case TpmFileMember tpm:
                        session!.StageTpmFile(tpm);
                        break;
                    case DiskMapMember map:
                        await session!.ApplyMapAsync(map, cancellationToken);
                        break;
                    case DiskDataMember data:
                        await session!.WriteAsync(data, cancellationToken);
                        break;
                    case TrailerMember:
                        await session!.FinishDisksAsync(cancellationToken);
                        break;
                }
            }

            // The enumeration ended without an exception: the reader proved the stream complete and intact.
            return await CommitAsync(session!, options, elapsed, cancellationToken);
        }
        finally
        {
            if (session is not null)
            {
                await session.DisposeAsync();
            }
        }
    }

    private async Task<RestoreResult> CommitAsync(RestoreSession session, RestoreOptions options, Stopwatch elapsed, CancellationToken cancellationToken)
    {
        var plan = session.Plan;
        var manifest = plan.Manifest;
        var definition = RestoredDefinition.Rewrite(
            session.DomainXml!,
            new RestoredIdentity(
                plan.Name,
                plan.Uuid,
                plan.Disks.ToDictionary(d => d.Target, d => (d.HostPath, d.Format)),
                plan.NvramHostPath,
                plan.NewIdentity),
            manifest.Disks.Where(d => d.Excluded).Select(d => d.Target).ToHashSet(StringComparer.Ordinal));
        var position = await session.CommitAsync(definition, cancellationToken);
        var definitionPath = plan.Layout.ChainStore(host.Files).DefinitionPath(plan.Name);
        if (manifest.Tpm.EncryptionSecretUuid is { } secret)
        {
            log.Warning("the TPM state is encrypted with libvirt secret {Secret}: define that secret (same UUID and value) before starting {Name}", secret, plan.Name);
        }

        if (options.Define)
        {
            using var domain = libvirt!.Define(definition);
            log.Information("{Action} libvirt domain {Name} ({Uuid})", plan.ReplacesDomain ? "redefined" : "defined", domain.Name, domain.Uuid);
        }

        var dataBytes = session.DataBytes;
        log.Information("restore of {Name} complete: {Position}; {DataMiB:F1} MiB of disk data in {Seconds:F1} s; definition in {Definition}",
            plan.Name, position.Describe, dataBytes / 1048576.0, elapsed.Elapsed.TotalSeconds, definitionPath);
        return new RestoreResult(position, definitionPath, options.Define, dataBytes, elapsed.Elapsed);
    }
}
