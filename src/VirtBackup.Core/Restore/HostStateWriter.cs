using System.Globalization;
using VirtBackup.Core.Hosts;

namespace VirtBackup.Core.Restore;

/// <summary>
/// The one writer of a restored domain's NVRAM and TPM state, on this machine or a remote one alike, through the
/// host's files: staged in memory (a few hundred KiB) and written at <see cref="CommitAsync"/>, each part atomically
/// and never readable by anyone but its owner: the NVRAM as a 0600 file renamed over the target, the TPM state as a
/// tree of 0600 files in 0700 directories owned by swtpm's user, built next to the target and renamed into place (an
/// existing one moved aside first and removed last); each directory is flushed after its rename. Before the commit
/// nothing on the host changes, so an abandoned restore leaves nothing behind.
/// </summary>
/// <param name="tpmOwner">swtpm's uid and gid for the TPM state; null leaves the writing user as the owner.</param>
public sealed class HostStateWriter(IHostFiles files, string nvramPath, string tpmDirectory, (int Uid, int Gid)? tpmOwner)
{
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = PrivateFile | UnixFileMode.UserExecute;
    private const UnixFileMode Traversable = PrivateDirectory | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode Readable = Traversable | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly List<HostFile> _tpm = [];
    private byte[]? _nvram;

    public void StageNvram(ReadOnlySpan<byte> content)
    {
        if (_nvram is not null)
        {
            throw new InvalidOperationException("the NVRAM is staged once");
        }

        _nvram = content.ToArray();
    }

    /// <param name="relativePath">Checked by the stream reader: '/'-separated safe segments, no '..'.</param>
    public void StageTpmFile(string relativePath, ReadOnlySpan<byte> content) =>
        _tpm.Add(new HostFile(relativePath, content.ToArray(), PrivateFile));

    /// <summary>Puts what was staged in place. Call only once the stream is proven complete.</summary>
    /// <exception cref="RestoreWriteException">The host refused a write; the message names the file.</exception>
    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_nvram is not null)
            {
                // libvirt keeps the NVRAM directory world-readable (0755) and the file its own (root, 0600).
                var directory = Path.GetDirectoryName(nvramPath)!;
                await files.CreateDirectoryAsync(directory, Readable, cancellationToken);
                await files.WriteFileAsync(nvramPath, _nvram, PrivateFile, null, null, cancellationToken);
                await files.SyncAsync(directory, cancellationToken);
            }

            if (_tpm.Count > 0)
            {
                await CommitTpmAsync(cancellationToken);
            }
        }
        catch (HostException e)
        {
            throw new RestoreWriteException($"putting the restored NVRAM/TPM state in place failed: {e.Message}", e);
        }
    }

    private async Task CommitTpmAsync(CancellationToken cancellationToken)
    {
        // libvirt makes /var/lib/libvirt/swtpm and swtpm/UUID root-owned 0711; the state directory is swtpm's, 0700.
        var domainDirectory = Path.GetDirectoryName(tpmDirectory)!;
        var created = !await files.ExistsAsync(domainDirectory, cancellationToken);
        await files.CreateDirectoryAsync(domainDirectory, Traversable, cancellationToken);
        try
        {
            await files.WriteTreeAsync(
                tpmDirectory,
                _tpm,
                PrivateFile,
                PrivateDirectory,
                tpmOwner?.Uid.ToString(CultureInfo.InvariantCulture),
                tpmOwner?.Gid.ToString(CultureInfo.InvariantCulture),
                cancellationToken);
            await files.SyncAsync(domainDirectory, cancellationToken);
        }
        catch (HostException) when (created)
        {
            // The per-UUID directory was made for this restore only: an empty one would only mislead.
            await files.DeleteTreeAsync(domainDirectory, CancellationToken.None);
            throw;
        }
    }
}
