using System.Globalization;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;

namespace VirtBackup.Core.Restore;

/// <summary>
/// The NVRAM and TPM state of a restore to a remote host: staged in memory (a few hundred KiB) and written at
/// commit through the host's files, each part atomically: the NVRAM as a 0600 file renamed over the target, the
/// TPM state as a tree of 0600 files in 0700 directories owned by swtpm's user, built next to the target and
/// renamed into place (an existing one moved aside first and removed last). Before the commit nothing on the
/// host changes, so an abandoned restore leaves nothing behind.
/// </summary>
public sealed class HostStateWriter(IHostFiles files, string nvramPath, string tpmDirectory, (int Uid, int Gid) tpmOwner) : IStateWriter
{
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = PrivateFile | UnixFileMode.UserExecute;
    private const UnixFileMode Traversable = PrivateDirectory | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode Readable = Traversable | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly List<HostFile> tpm = [];
    private byte[]? nvram;

    public void StageNvram(ReadOnlySpan<byte> content)
    {
        if (nvram is not null)
        {
            throw new InvalidOperationException("the NVRAM is staged once");
        }

        nvram = content.ToArray();
    }

    public void StageTpmFile(string relativePath, ReadOnlySpan<byte> content) =>
        tpm.Add(new HostFile(relativePath, content.ToArray(), PrivateFile));

    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        if (nvram is not null)
        {
            // libvirt keeps the NVRAM directory world-readable (0755) and the file its own (root, 0600).
            await files.CreateDirectoryAsync(Path.GetDirectoryName(nvramPath)!, Readable, cancellationToken);
            await files.WriteFileAsync(nvramPath, nvram, PrivateFile, null, null, cancellationToken);
        }

        if (tpm.Count > 0)
        {
            // libvirt makes /var/lib/libvirt/swtpm and swtpm/UUID root-owned 0711; the state directory is swtpm's, 0700.
            await files.CreateDirectoryAsync(Path.GetDirectoryName(tpmDirectory)!, Traversable, cancellationToken);
            await files.WriteTreeAsync(
                tpmDirectory,
                tpm,
                PrivateFile,
                PrivateDirectory,
                tpmOwner.Uid.ToString(CultureInfo.InvariantCulture),
                tpmOwner.Gid.ToString(CultureInfo.InvariantCulture),
                cancellationToken);
        }
    }

    /// <summary>Nothing was written before the commit: nothing to remove.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
