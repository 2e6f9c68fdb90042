using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// A backup chain over seekable stream files (a full, or a full and its incrementals in order): each file's
/// trailer, manifest and maps read by seeking, the chain checked like restore checks it, and per disk of the
/// full an extent map saying which member (newest wins) holds each byte, or that it reads as zeros.
/// Nothing is read front to back: opening costs the same for a small and a huge disk.
/// </summary>
public sealed class ChainIndex : IDisposable
{
    private readonly List<StreamFile> _streams;

    private ChainIndex(List<StreamFile> streams, IReadOnlyList<DiskLayout> disks)
    {
        _streams = streams;
        Disks = disks;
    }

    internal IReadOnlyList<DiskLayout> Disks { get; }

    /// <summary>The chain's stream files, the full first.</summary>
    internal IReadOnlyList<StreamFile> Streams => _streams;

    /// <summary>The served disks' targets, in the full stream's order.</summary>
    public IReadOnlyList<string> Targets => Disks.Select(d => d.Target).ToList();

    /// <summary>The newest stream's manifest: what the served disks are a backup of.</summary>
    public Manifest Newest => _streams[^1].Manifest;

    public int StreamCount => _streams.Count;

    public static ChainIndex Open(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0)
        {
            throw new ArgumentException("A chain needs at least one stream file.", nameof(paths));
        }

        var streams = new List<StreamFile>();
        try
        {
            foreach (var path in paths)
            {
                streams.Add(StreamFile.Open(path));
            }

            ChainOrder.Check(streams);
            var disks = new List<DiskLayout>();
            foreach (var disk in streams[0].Manifest.Disks.Where(d => !d.Excluded))
            {
                var layers = streams
                    .Where(s => s.Disks.ContainsKey(disk.Target))
                    .Select(s => (s.Disks[disk.Target].Map, s.DataMembers(s.Disks[disk.Target])))
                    .ToList();
                disks.Add(DiskLayout.Build(disk.Target, disk.VirtualSize, layers));
            }

            return new ChainIndex(streams, disks);
        }
        catch
        {
            foreach (var s in streams)
            {
                s.Dispose();
            }

            throw;
        }
    }

    public void Dispose()
    {
        foreach (var s in _streams)
        {
            s.Dispose();
        }
    }
}
