using System.ComponentModel;
using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Hosts.Ssh;

namespace VirtBackup.Core.Hosts;

/// <summary>
/// The job's scratch images (where QEMU keeps copy-before-write data while the job runs), made before the pause so
/// that <c>virDomainBackupBegin</c> only attaches them (<see cref="BackupBeginFlags.ReuseExternal"/>). Left to libvirt,
/// they are made inside the pause window, by one QEMU blockdev-create job per disk: ~25 ms of a 50-110 ms window here.
/// Each is an empty qcow2 image of its disk's virtual size (qemu-img), 0600 and owned by the QEMU process's user like
/// the ones libvirt makes; they are removed on dispose, which must come after the job ended. On a remote host all of
/// them are made by one remote command (and removed by another), still before the pause. When they cannot be made
/// (no qemu-img), libvirt makes them, as it always did.
/// </summary>
internal sealed class ScratchImages : IAsyncDisposable
{
    /// <summary>Where libvirt keeps scratch images itself, and virtbackup by default.</summary>
    public const string DefaultDirectory = "/var/lib/libvirt/images";

    private readonly IReadOnlyList<(string Target, string Path)> disks;
    private readonly IHostImages images;
    private readonly Task<bool> made;
    private readonly ILogger log;

    private ScratchImages(IReadOnlyList<(string Target, string Path)> disks, IHostImages images, Task<bool> made, ILogger log)
    {
        this.disks = disks;
        this.images = images;
        this.made = made;
        this.log = log;
    }

    /// <summary>
    /// Starts making the images on the thread pool while the caller plans. Call under the domain lock and after
    /// <see cref="Capture.DomainRepair"/>: the job of an interrupted run may still be using the same paths until then.
    /// </summary>
    /// <param name="owner">The running QEMU's uid and gid (on its host), which writes the images.</param>
    public static ScratchImages Start(
        IHypervisorHost host, Domain domain, IReadOnlyList<(string Target, string Path)> disks, (int Uid, int Gid)? owner, ILogger log)
    {
        var made = disks.Count == 0 ? Task.FromResult(false) : Task.Run(() => MakeAsync(disks, host.Images, domain, owner, log));
        return new ScratchImages(disks, host.Images, made, log);
    }

    /// <summary>The scratch files a &lt;domainbackup&gt; document (a running job's) names.</summary>
    public static IEnumerable<string> In(string backupXml) =>
        System.Xml.Linq.XDocument.Parse(backupXml).Descendants("scratch")
            .Select(e => (string?)e.Attribute("file")).OfType<string>();

    /// <summary>
    /// Removes, of <paramref name="candidates"/> and the default scratch directory's files, the scratch images virtbackup
    /// names for domain <paramref name="domainUuid"/>. Only with no job of virtbackup running on the domain (the repair's
    /// part, under the domain lock). A directory this process may not list (the default one, for a non-root user) holds
    /// none of its scratch images; a file it may not remove is reported in <c>Failed</c>, not thrown.
    /// </summary>
    public static (IReadOnlyList<string> Removed, IReadOnlyList<string> Failed) RemoveStale(string domainUuid, IEnumerable<string> candidates)
    {
        var prefix = $"virtbackup-{domainUuid}-";
        var removed = new List<string>();
        var failed = new List<string>();
        foreach (var path in candidates.Concat(InDefaultDirectory(prefix)).Distinct(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(".scratch", StringComparison.Ordinal) || !File.Exists(path))
            {
                continue;
            }

            try
            {
                File.Delete(path);
                removed.Add(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failed.Add($"{path} ({e.Message})");
            }
        }

        return (removed, failed);
    }

    private static List<string> InDefaultDirectory(string prefix)
    {
        try
        {
            return Directory.Exists(DefaultDirectory)
                ? [.. Directory.EnumerateFiles(DefaultDirectory, $"{prefix}*.scratch")]
                : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The flags for <c>virDomainBackupBegin</c>: reuse the images once they exist, else let libvirt make them.</summary>
    public async Task<BackupBeginFlags> BeginFlagsAsync() =>
        await made ? BackupBeginFlags.ReuseExternal : BackupBeginFlags.None;

    public async ValueTask DisposeAsync()
    {
        if (!await made)
        {
            return;
        }

        try
        {
            await images.RemoveFilesAsync([.. disks.Select(d => d.Path)], CancellationToken.None);
        }
        catch (HostException e)
        {
            // The backup's outcome stands; the next run overwrites the image anyway.
            log.Warning("could not remove a scratch image: {Message}", e.Message);
        }
    }

    private static async Task<bool> MakeAsync(
        IReadOnlyList<(string Target, string Path)> disks, IHostImages images, Domain domain, (int Uid, int Gid)? owner, ILogger log)
    {
        try
        {
            await images.CreateScratchAsync([.. disks.Select(d => (d.Path, domain.GetBlockCapacity(d.Target)))], owner, CancellationToken.None);
            log.Debug("made {Count} scratch images before the pause: {Paths}", disks.Count, string.Join(", ", disks.Select(d => d.Path)));
            return true;
        }
        catch (Exception e) when (e is HostException or LibvirtException)
        {
            // Not a failure of the backup: libvirt makes them inside the pause window instead, as it always did.
            log.Debug("scratch images not made beforehand, libvirt makes them: {Message}", e.Message);
            try
            {
                await images.RemoveFilesAsync([.. disks.Select(d => d.Path)], CancellationToken.None);
            }
            catch (HostException d)
            {
                // Nothing was made where nothing may be removed; backupBegin fails clearly if a half-made one is in the way.
                log.Debug("scratch images not removed: {Message}", d.Message);
            }

            return false;
        }
    }
}
