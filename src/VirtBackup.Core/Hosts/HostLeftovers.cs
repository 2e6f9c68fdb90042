using Serilog;
using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts;

/// <summary>
/// A durable note, in the domain's state directory, of what a backup makes on the hypervisor host outside libvirt: its
/// job runtime directory and its scratch images. Each path is noted (and flushed to disk) before it is made and
/// forgotten once it is removed, so a run killed in between (SIGKILL: no cleanup ran) leaves the note, and the next run
/// or <c>repair</c> removes exactly those paths through the host layer: on this machine, or over SSH on a remote host,
/// where no local file call could see them. Each line is "HOST&lt;TAB&gt;PATH"; a path noted for another host (another
/// <c>--connect</c>) is kept for a run that reaches that host. One per run, used under the domain lock.
/// </summary>
public sealed class HostLeftovers(string domainStateDirectory)
{
    public const string FileName = "on-host-by-virtbackup";

    private readonly Lock _gate = new();

    public string Path { get; } = System.IO.Path.Combine(domainStateDirectory, FileName);

    /// <summary>Notes <paramref name="paths"/> on <paramref name="host"/>, durably, before they are made.</summary>
    public void Note(IHypervisorHost host, IEnumerable<string> paths)
    {
        lock (_gate)
        {
            Write([.. Read(), .. paths.Select(p => (host.Display, Checked(p)))]);
        }
    }

    /// <summary>Forgets <paramref name="paths"/> on <paramref name="host"/>, once they are removed.</summary>
    public void Forget(IHypervisorHost host, IEnumerable<string> paths)
    {
        var gone = paths.ToHashSet(StringComparer.Ordinal);
        lock (_gate)
        {
            Write([.. Read().Where(e => e.Host != host.Display || !gone.Contains(e.Path))]);
        }
    }

    /// <summary>The paths noted on <paramref name="host"/>.</summary>
    public IReadOnlyList<string> On(IHypervisorHost host)
    {
        lock (_gate)
        {
            return [.. Read().Where(e => e.Host == host.Display).Select(e => e.Path).Distinct(StringComparer.Ordinal)];
        }
    }

    /// <summary>
    /// Removes every path noted on <paramref name="host"/> (a directory with its content; nothing there is fine) and
    /// forgets it. Only once no job of the run that made them can still use them: the job aborted or ended. A path the
    /// host refuses to remove stays noted and is reported, for the next run; nothing is thrown for it.
    /// </summary>
    /// <returns>The paths removed.</returns>
    public async Task<IReadOnlyList<string>> RemoveAsync(IHypervisorHost host, ILogger log)
    {
        var removed = new List<string>();
        foreach (var path in On(host))
        {
            try
            {
                await host.Files.DeleteTreeAsync(path, CancellationToken.None);
                Forget(host, [path]);
                removed.Add(path);
                log.Debug("removed {Path} on {Host}, left by a virtbackup that no longer runs", path, host.Display);
            }
            catch (HostException e)
            {
                // The backup's outcome does not depend on it; the note stays, and the next run tries again.
                log.Warning("could not remove {Path} on {Host}, left by a virtbackup that no longer runs: {Message}", path, host.Display, e.Message);
            }
        }

        return removed;
    }

    private static string Checked(string path) =>
        path.Contains('\n') || path.Contains('\t')
            ? throw new ArgumentException($"'{path}' has a tab or a line break: virtbackup makes nothing there", nameof(path))
            : HostPaths.Absolute(path, nameof(path));

    private List<(string Host, string Path)> Read()
    {
        if (!File.Exists(Path))
        {
            return [];
        }

        return [.. File.ReadAllLines(Path)
            .Select(line => line.Split('\t', 2))
            .Where(fields => fields.Length == 2 && fields[1].StartsWith('/'))
            .Select(fields => (fields[0], fields[1]))];
    }

    /// <summary>Replaces the note (a new file flushed and renamed over it, the directory flushed); none when empty.</summary>
    private void Write(IReadOnlyList<(string Host, string Path)> entries)
    {
        var directory = System.IO.Path.GetDirectoryName(Path)!;
        if (entries.Count == 0)
        {
            if (File.Exists(Path))
            {
                File.Delete(Path);
                Posix.FsyncDirectory(directory);
            }

            return;
        }

        Directory.CreateDirectory(directory);
        var temporary = Path + ".new";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(entries.Distinct().Select(e => $"{e.Host}\t{e.Path}\n"))));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, Path, overwrite: true);
        Posix.FsyncDirectory(directory);
    }
}
