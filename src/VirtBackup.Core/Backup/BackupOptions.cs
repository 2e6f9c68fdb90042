using VirtBackup.Core.Capture;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Backup;

/// <summary>Everything a backup is asked to do; immutable.</summary>
public sealed record BackupOptions(
    string Domain,
    RequestedLevel Level,
    IReadOnlyList<string> ExcludeDisks,
    StreamWriterOptions Stream,
    FreezeMode Freeze,
    string StateDirectory,
    string ScratchDirectory)
{
    public const string DefaultScratchDirectory = "/var/lib/libvirt/images";
}

/// <summary>How far the disk streaming is, for a progress line.</summary>
public readonly record struct BackupProgress(long BytesDone, long BytesTotal);

/// <summary>What a completed backup produced.</summary>
public sealed record BackupResult(Manifest Manifest, long DataBytes, TimeSpan Elapsed);
