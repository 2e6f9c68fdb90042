using System.Reflection;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>Assembles the manifest from what the backup decided and captured.</summary>
public static class ManifestBuilder
{
    public static string ToolVersion { get; } =
        typeof(ManifestBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static Manifest Build(
        DomainXml xml,
        DiskSelection selection,
        IReadOnlyList<DiskSource> disks,
        ChainPlan plan,
        StateLocation state,
        CapturedState captured,
        StreamWriterOptions streamOptions,
        IReadOnlyList<string> extraWarnings)
    {
        var warnings = new List<string>(extraWarnings);
        var tpm = state.Tpm;
        if (tpm?.EncryptionSecret is { } secret)
        {
            warnings.Add($"the TPM state is encrypted with libvirt secret {secret}: that secret must exist (same UUID and value) where this VM is restored");
        }

        foreach (var raw in selection.Included.Where(d => d.DriverType == "raw"))
        {
            warnings.Add($"disk {raw.Target} is raw: it carries no dirty bitmap and is copied whole in every backup");
        }

        if (captured.Freeze == FreezeState.NotFrozen)
        {
            warnings.Add("the guest agent answered but could not freeze the file systems: the disks are crash-consistent, not file-system-consistent");
        }

        var sizes = disks.ToDictionary(d => d.Target, d => d.Reader.ExportSize);
        var manifestDisks = selection.Included.Concat(selection.Excluded)
            .OrderBy(d => d.Target, StringComparer.Ordinal)
            .Select(d => new ManifestDisk(
                d.Target,
                d.DriverType == "raw" ? DiskFormat.Raw : DiskFormat.Qcow2,
                sizes.GetValueOrDefault(d.Target),
                !sizes.ContainsKey(d.Target),
                d.SourcePath))
            .ToList();
        return new Manifest
        {
            ToolVersion = ToolVersion,
            DomainName = xml.Name,
            DomainUuid = xml.Uuid,
            Level = plan.Level,
            Checkpoint = plan.Checkpoint,
            ParentCheckpoint = plan.Parent,
            ChainId = plan.ChainId,
            Chain = plan.Chain,
            CreatedUtc = DateTime.UtcNow,
            PauseWindowMs = captured.PauseWindowMs,
            Freeze = captured.Freeze,
            Compression = CompressionInfo.From(streamOptions),
            Disks = manifestDisks,
            Tpm = tpm is { Backend: TpmBackendType.Emulator } ? new TpmInfo(captured.TpmFiles.Count > 0, tpm.Version, tpm.EncryptionSecret) : TpmInfo.None,
            NvramPresent = captured.Nvram is not null,
            Warnings = warnings,
        };
    }
}
