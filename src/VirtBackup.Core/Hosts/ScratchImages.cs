using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Hosts;

/// <summary>
/// The job's scratch images (where QEMU keeps copy-before-write data while the job runs), made before the pause so
/// that <c>virDomainBackupBegin</c> only attaches them (<see cref="BackupBeginFlags.ReuseExternal"/>). Left to libvirt,
/// they are made inside the pause window, by one QEMU blockdev-create job per disk: ~25 ms of a 50-110 ms window here.
/// Each is an empty qcow2 image of its disk's virtual size (qemu-img), 0600 and owned by the QEMU process's user like
/// the ones libvirt makes; they are removed on dispose, which must come after the job ended, and noted in the run's <see cref="HostLeftovers"/>
/// until then. On a remote host all of
/// them are made by one remote command (and removed by another), still before the pause. When they cannot be made
/// (no qemu-img), libvirt makes them, as it always did.
/// </summary>
internal sealed class ScratchImages : IAsyncDisposable
{
    /// <summary>Where libvirt keeps scratch images itself, and virtbackup by default.</summary>
    public const string DefaultDirectory = "/var/lib/libvirt/images";

    private readonly IReadOnlyList<(string Target, string Path)> _disks;
    private readonly IHypervisorHost _host;
    private readonly HostLeftovers _leftovers;
    private readonly Task<bool> _made;
    private readonly ILogger _log;

    private ScratchImages(
        IReadOnlyList<(string Target, string Path)> disks, IHypervisorHost host, HostLeftovers leftovers, Task<bool> made, ILogger log)
    {
        _disks = disks;
        _host = host;
        _leftovers = leftovers;
        _made = made;
        _log = log;
    }

    /// <summary>
    /// Starts making the images on the thread pool while the caller plans, each noted in <paramref name="leftovers"/>
    /// first. Call under the domain lock and after <see cref="Capture.DomainRepair"/>: the job of an interrupted run may
    /// still be using the same paths until then.
    /// </summary>
    /// <param name="owner">The running QEMU's uid and gid (on its host), which writes the images.</param>
    public static ScratchImages Start(
        IHypervisorHost host, Domain domain, IReadOnlyList<(string Target, string Path)> disks, (int Uid, int Gid)? owner, HostLeftovers leftovers, ILogger log)
    {
        leftovers.Note(host, disks.Select(d => d.Path));
        var made = disks.Count == 0 ? Task.FromResult(false) : Task.Run(() => MakeAsync(disks, host.Images, domain, owner, log));
        return new ScratchImages(disks, host, leftovers, made, log);
    }

    /// <summary>The scratch image virtbackup names for disk <paramref name="target"/> of domain <paramref name="domainUuid"/>.</summary>
    public static string PathFor(string scratchDirectory, string domainUuid, string target) =>
        Path.Combine(scratchDirectory, $"virtbackup-{domainUuid}-{target}.scratch");

    /// <summary>The scratch files a &lt;domainbackup&gt; document (a running job's) names.</summary>
    public static IEnumerable<string> In(string backupXml) =>
        System.Xml.Linq.XDocument.Parse(backupXml).Descendants("scratch")
            .Select(e => (string?)e.Attribute("file")).OfType<string>();

    /// <summary>
    /// Removes, of <paramref name="candidates"/> (the files a job of an interrupted run named), the scratch images
    /// virtbackup names for domain <paramref name="domainUuid"/>, on <paramref name="host"/>. Only with no job of
    /// virtbackup running on the domain (the repair's part, under the domain lock). Those an interrupted run made
    /// itself go with its <see cref="HostLeftovers"/>; these are the ones libvirt made for it. Returns the files removed;
    /// a failure is logged, not thrown.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RemoveStaleAsync(IHypervisorHost host, string domainUuid, IEnumerable<string> candidates, ILogger log)
    {
        var prefix = $"virtbackup-{domainUuid}-";
        var ours = candidates
            .Where(path => Path.GetFileName(path) is var name && name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".scratch", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (ours.Count == 0)
        {
            return [];
        }

        try
        {
            await host.Images.RemoveFilesAsync(ours, CancellationToken.None);
            return ours;
        }
        catch (HostException e)
        {
            log.Warning("could not remove the scratch images {Paths} on {Host}, left by a virtbackup that no longer runs: {Message}. Remove them by hand",
                string.Join(", ", ours), host.Display, e.Message);
            return [];
        }
    }

    /// <summary>The flags for <c>virDomainBackupBegin</c>: reuse the images once they exist, else let libvirt make them.</summary>
    public async Task<BackupBeginFlags> BeginFlagsAsync() =>
        await _made ? BackupBeginFlags.ReuseExternal : BackupBeginFlags.None;

    public async ValueTask DisposeAsync()
    {
        var paths = _disks.Select(d => d.Path).ToList();
        if (!await _made)
        {
            // libvirt made them, or nothing was made: libvirt removes its own when the job ends.
            _leftovers.Forget(_host, paths);
            return;
        }

        try
        {
            await _host.Images.RemoveFilesAsync(paths, CancellationToken.None);
            _leftovers.Forget(_host, paths);
        }
        catch (HostException e)
        {
            // The backup's outcome stands; the images stay noted, and the next run removes them.
            _log.Warning("could not remove a scratch image: {Message}", e.Message);
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
