using Serilog;
using VirtBackup.Core.Chain;

namespace VirtBackup.Core.Backup;

/// <summary>
/// Owns the checkpoint that a full or incremental backup of a shut-off domain creates, as <see cref="Capture.BackupJob"/>
/// owns a running domain's: disposing it without <see cref="Commit"/> removes exactly what <see cref="CreateAsync"/>
/// made (libvirt's record, metadata only, and the new bitmap in every disk), so the chain stays at its last committed
/// checkpoint, whose bitmap kept recording and still covers every change for the next incremental.
/// </summary>
public sealed class OfflineCheckpoint(OfflineCheckpoints checkpoints, string? name, string domainName, ILogger log) : IAsyncDisposable
{
    private bool _created;
    private bool _committed;

    /// <summary>Creates the checkpoint: bitmaps first, then libvirt's record from <paramref name="redefinitionXml"/>.</summary>
    public async Task CreateAsync(string redefinitionXml, CancellationToken cancellationToken)
    {
        var checkpoint = name ?? throw new InvalidOperationException("a copy creates no checkpoint");
        _created = true; // before the first bitmap: a failure halfway is undone too
        await checkpoints.CreateAsync(checkpoint, redefinitionXml, cancellationToken);
    }

    /// <summary>The stream is complete and the chain advanced: the checkpoint stays.</summary>
    public void Commit() => _committed = true;

    public async ValueTask DisposeAsync()
    {
        if (!_created || _committed)
        {
            return;
        }

        try
        {
            await checkpoints.DeleteAsync(name!, CancellationToken.None); // cleanup: a signal must not leave it half done
            log.Information("rolled back checkpoint {Checkpoint} of {Domain}: the next incremental covers these changes too", name, domainName);
        }
        catch (Exception e) when (e is VirtBackupException or IOException)
        {
            // Reported, not thrown: the backup's own failure is what the exit code says; the next run removes an uncommitted checkpoint.
            log.Warning("could not roll back checkpoint {Checkpoint} of {Domain} yet: {Message}", name, domainName, e.Message);
        }
    }
}
