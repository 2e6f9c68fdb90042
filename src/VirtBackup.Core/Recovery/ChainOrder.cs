using VirtBackup.Core.Restore;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// The rules restore applies one stream at a time, applied to a whole chain given at once: a full (or a copy,
/// alone) first, then its incrementals, each continuing the one before it (same chain id and domain, parent =
/// the previous checkpoint, each exactly once), and no disk that the full does not have or of another size.
/// </summary>
internal static class ChainOrder
{
    public static void Check(IReadOnlyList<StreamFile> streams)
    {
        var first = streams[0];
        var head = first.Manifest;
        if (head.Level == BackupLevel.Inc)
        {
            throw new ChainGapException(
                $"cannot serve the incremental stream {Describe(first)} without its chain: give the chain's full stream first, then its incrementals in order");
        }

        if (head.Level == BackupLevel.Copy && streams.Count > 1)
        {
            throw new ChainGapException($"{Describe(first)} is a copy, which starts no chain: serve it alone");
        }

        for (var i = 1; i < streams.Count; i++)
        {
            var stream = streams[i];
            var m = stream.Manifest;
            var previous = streams[i - 1].Manifest;
            if (m.Level != BackupLevel.Inc)
            {
                throw new ChainGapException(
                    $"{Describe(stream)} is a {StreamRules.LevelName(m.Level)} stream: only the first stream may be a full. Give one chain: its full, then its incrementals in order");
            }

            if (m.Chain != head.Chain && m.DomainUuid == head.DomainUuid)
            {
                throw new ChainGapException(
                    $"cannot apply the {Describe(stream)}: it is a backup of {ChainName.Describe(m.Chain)}, but {Describe(first)} is of {ChainName.Describe(head.Chain)}; "
                    + $"a domain's chains are independent and their streams never mix. Give only streams of {ChainName.Describe(head.Chain)}");
            }

            if (m.ChainId != head.ChainId || m.DomainUuid != head.DomainUuid)
            {
                throw new ChainGapException(
                    $"cannot apply the {Describe(stream)}: it belongs to another chain than {Describe(first)} (chain '{head.ChainId}' of domain {head.DomainUuid}). "
                    + $"Give only streams of chain '{head.ChainId}'");
            }

            if (m.Checkpoint == previous.Checkpoint || streams.Take(i).Any(s => s.Manifest.Checkpoint == m.Checkpoint))
            {
                throw new ChainGapException($"the {Describe(stream)} is given twice: give the chain's streams in order, each exactly once");
            }

            if (m.ParentCheckpoint != previous.Checkpoint)
            {
                throw new ChainGapException(
                    $"cannot apply the {Describe(stream)}: it continues from checkpoint '{m.ParentCheckpoint}', but the stream before it is '{previous.Checkpoint}'. "
                    + "Give the chain's streams in order, each exactly once");
            }

            foreach (var disk in m.Disks.Where(d => !d.Excluded))
            {
                var full = head.Disks.FirstOrDefault(d => d.Target == disk.Target && !d.Excluded)
                    ?? throw new ChainGapException($"the {Describe(stream)} carries disk {disk.Target}, which the chain's full stream does not have: serve a newer full backup");
                if (full.VirtualSize != disk.VirtualSize)
                {
                    throw new ChainGapException(
                        $"disk {disk.Target} is {disk.VirtualSize} bytes in the {Describe(stream)} but {full.VirtualSize} in the full stream: a resized disk needs a new full backup");
                }
            }
        }
    }

    private static string Describe(StreamFile stream)
    {
        var m = stream.Manifest;
        return m.Level == BackupLevel.Inc
            ? $"incremental stream '{m.Checkpoint}' (chain '{m.ChainId}', parent '{m.ParentCheckpoint}', taken {m.CreatedUtc:u}, file '{stream.Path}')"
            : $"{StreamRules.LevelName(m.Level)} stream '{m.Checkpoint ?? "copy"}' (taken {m.CreatedUtc:u}, file '{stream.Path}')";
    }
}
