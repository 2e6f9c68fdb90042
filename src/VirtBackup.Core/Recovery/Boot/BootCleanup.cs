using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// Removes what a boot made, from its record: the domain (destroyed and undefined, only when its UUID is the
/// recorded one), the overlays, the NVRAM file, the swtpm directory, the serve process (only when its pid is still
/// that serve) and the run directory. Every step is tried; what could not be removed is logged and reported.
/// A live-restored boot (<see cref="BootPhase.Restored"/>) keeps its domain, images, NVRAM and TPM state: they are an
/// ordinary domain's now; only its server and run directory go.
/// </summary>
public sealed class BootCleanup(LibvirtConnection libvirt, ILogger log)
{
    /// <summary>Removes the boot named <paramref name="name"/>; false when none is recorded.</summary>
    public async Task<bool> StopAsync(string name)
    {
        var record = BootRecord.Load(BootLayout.RunDirectoryFor(name));
        if (record is null)
        {
            return false;
        }

        await RemoveAsync(record);
        return true;
    }

    /// <summary>Removes everything in <paramref name="record"/>; throws <see cref="BootFailedException"/> listing what is left.</summary>
    public async Task RemoveAsync(BootRecord record)
    {
        var left = new List<string>();
        var restored = record.Phase == BootPhase.Restored;
        if (!restored)
        {
            RemoveDomainAndFiles(record, left);
        }

        try
        {
            await ServeProcess.StopAsync(record.ServePid, record.SocketPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            left.Add($"serve pid {record.ServePid}: {e.Message}");
        }

        Try(left, record.RunDirectory, () =>
        {
            if (Directory.Exists(record.RunDirectory))
            {
                Directory.Delete(record.RunDirectory, recursive: true);
            }
        });
        if (left.Count > 0)
        {
            foreach (var item in left)
            {
                log.Error("could not remove {Item}", item);
            }

            throw new BootFailedException($"removing boot {record.Name} left: {string.Join("; ", left)}");
        }

        if (restored)
        {
            log.Information("stopped the server of live-restored {Name} ({Uuid}) and removed its run directory", record.Name, record.Uuid);
            return;
        }

        log.Information("removed boot {Name} ({Uuid}): domain, overlays, NVRAM, TPM state and its server", record.Name, record.Uuid);
    }

    private void RemoveDomainAndFiles(BootRecord record, List<string> left)
    {
        if (record.Defined)
        {
            Try(left, $"domain {record.Name}", () => RemoveDomain(record));
        }

        foreach (var file in record.SerialLogPath is { } serial ? [.. record.Overlays, serial] : record.Overlays)
        {
            Try(left, file, () => File.Delete(file));
        }

        if (record.NvramPath is { } nvram)
        {
            Try(left, nvram, () => File.Delete(nvram));
        }

        if (record.SwtpmDirectory is { } swtpm)
        {
            Try(left, swtpm, () =>
            {
                if (Directory.Exists(swtpm))
                {
                    Directory.Delete(swtpm, recursive: true);
                }
            });
        }
    }

    private void RemoveDomain(BootRecord record)
    {
        using var domain = libvirt.TryLookupByName(record.Name);
        if (domain is null || !string.Equals(domain.Uuid, record.Uuid, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        if (domain.IsActive())
        {
            domain.Destroy();
        }

        domain.Undefine(DomainUndefineFlags.Nvram | DomainUndefineFlags.Tpm | DomainUndefineFlags.ManagedSave
            | DomainUndefineFlags.SnapshotsMetadata | DomainUndefineFlags.CheckpointsMetadata);
    }

    private static void Try(List<string> left, string what, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or VirtBackupException)
        {
            left.Add($"{what}: {e.Message}");
        }
    }
}
