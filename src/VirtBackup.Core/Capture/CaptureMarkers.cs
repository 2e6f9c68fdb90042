using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Capture;

/// <summary>
/// A durable note in the domain's state directory that virtbackup changed the VM and must change it back: written
/// just before the change, removed just after the undo. If virtbackup is killed (SIGKILL) in between, or loses libvirtd,
/// the next run (or <c>repair</c>) finds it and undoes the change; a VM someone else paused or froze has no marker and
/// is left alone.
/// </summary>
public sealed class DomainMarker(string path)
{
    public string Path { get; } = path;

    public bool Exists => File.Exists(Path);

    public void Set()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        File.WriteAllText(Path, $"{Environment.ProcessId}\n");
    }

    public void Clear() => File.Delete(Path);
}

/// <summary>
/// The two changes a capture makes to a running VM, each with its <see cref="DomainMarker"/>: the pause
/// (<c>paused-by-virtbackup</c>) and the guest file system freeze (<c>frozen-by-virtbackup</c>). A frozen guest
/// stays frozen until someone thaws it: qemu-guest-agent on Linux has no timeout.
/// </summary>
public sealed class CaptureMarkers(string domainStateDirectory)
{
    public DomainMarker Paused { get; } = new(Path.Combine(domainStateDirectory, "paused-by-virtbackup"));

    public DomainMarker Frozen { get; } = new(Path.Combine(domainStateDirectory, "frozen-by-virtbackup"));

    public bool Any => Paused.Exists || Frozen.Exists;

    /// <summary>
    /// Resumes the VM if it is paused and the paused marker is there, then thaws the guest's file systems if the
    /// frozen marker is there (a paused guest's agent cannot answer), and clears each marker it acted on. A VM that
    /// no longer runs is neither paused nor frozen: its markers just go. A thaw the agent refuses keeps its marker for
    /// the next run. <paramref name="by"/> names who changed the VM ("an interrupted virtbackup", "this run").
    /// Returns what was done, one line each.
    /// </summary>
    public IReadOnlyList<string> Undo(IDomain domain, string by, ILogger log)
    {
        var done = new List<string>();
        if (Paused.Exists)
        {
            if (domain.IsActive() && domain.GetState().State == DomainState.Paused)
            {
                domain.Resume();
                done.Add($"resumed '{domain.Name}', which {by} had paused");
            }

            Paused.Clear();
        }

        if (Frozen.Exists)
        {
            if (domain.IsActive())
            {
                try
                {
                    if (domain.FSThaw() is > 0 and var count)
                    {
                        done.Add($"thawed {count} file systems of '{domain.Name}', which {by} had frozen");
                    }
                }
                catch (LibvirtException e)
                {
                    // No agent answers (yet): the marker stays, and the next run or 'repair' tries again.
                    log.Warning("could not thaw the file systems of {Domain}, which {By} had frozen: {Message}. "
                        + "Run 'virtbackup repair --domain {Name}' once its guest agent answers", domain.Name, by, e.LibvirtMessage, domain.Name);
                    return done;
                }
            }

            Frozen.Clear();
        }

        return done;
    }
}
