using System.Text;
using Serilog;
using VirtBackup.Core.Recovery;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Consolidate;

/// <summary>
/// <c>virtbackup consolidate</c>: from a chain of seekable stream files (a full, then its incrementals in order),
/// writes one full stream equal to restoring the chain: the disks as the newest stream leaves them, and the domain
/// XML, NVRAM and TPM state of the newest stream, at its checkpoint and chain id, so later incrementals apply on it.
/// Never touches the VM or libvirt. Every input's trailer, manifest and maps are checked before the first byte is
/// written (<see cref="ChainIndex"/>), every member read is checked against its trailer, and memory stays flat
/// whatever the disk size: members are read one at a time by position.
/// </summary>
public static class SyntheticFull
{
    /// <summary>Marks a synthetic full among the manifest's warnings (FORMAT.md §"Synthetic full").</summary>
    public const string WarningPrefix = "synthetic full: ";

    public static async Task<ConsolidateResult> WriteAsync(IReadOnlyList<string> paths, System.IO.Stream output, string toolVersion,
        ILogger log, CancellationToken cancellationToken)
    {
        using var index = ChainIndex.Open(paths);
        var streams = index.Streams;
        var full = streams[0].Manifest;
        if (full.Level != BackupLevel.Full)
        {
            throw new ConsolidateRefusedException($"'{streams[0].Path}' is a copy, which starts no chain: consolidate needs a full stream first, then its incrementals in order");
        }

        var newest = streams[^1];
        var manifest = Manifest(index, toolVersion);
        var compression = manifest.Compression;
        var options = new StreamWriterOptions(compression.Algorithm, compression.Level, compression.MemberSize);
        log.Information("consolidating {Streams} stream(s) of chain '{Chain}' of {Domain} up to checkpoint '{Checkpoint}'",
            streams.Count, manifest.ChainId, manifest.DomainName, manifest.Checkpoint);

        using var reader = new MemberReader();
        var counts = new MergedCounts();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            await writer.WriteManifestAsync(manifest, cancellationToken);
            await writer.WriteDomainXmlAsync(Encoding.UTF8.GetString(Read(newest, MemberNames.DomainXml)), cancellationToken);
            foreach (var member in newest.Members.Where(m => m.Name.StartsWith(MemberNames.NvramPrefix, StringComparison.Ordinal)))
            {
                await writer.WriteNvramAsync(member.Name[MemberNames.NvramPrefix.Length..], MemberReader.Small(newest, member), cancellationToken);
            }

            foreach (var member in newest.Members.Where(m => m.Name.StartsWith(MemberNames.TpmPrefix, StringComparison.Ordinal)))
            {
                await writer.WriteTpmFileAsync(member.Name[MemberNames.TpmPrefix.Length..], MemberReader.Small(newest, member), cancellationToken);
            }

            var merger = new DiskMerger(writer, reader, compression, manifest.FormatVersion);
            foreach (var disk in index.Disks)
            {
                counts += await merger.WriteAsync(disk, cancellationToken);
            }

            await writer.CompleteAsync(cancellationToken);
        }

        log.Information("synthetic full written: {Copied} data member(s) copied as stored ({CopiedMiB:F1} MiB), {Encoded} encoded anew ({EncodedMiB:F1} MiB)",
            counts.CopiedMembers, counts.CopiedBytes / 1048576.0, counts.EncodedMembers, counts.EncodedBytes / 1048576.0);
        return new ConsolidateResult(manifest, streams.Count, counts);
    }

    /// <summary>
    /// A full at the newest stream's checkpoint and chain id (so the next incremental's parent rule holds), with the
    /// newest stream's domain, time, pause window, freeze state, NVRAM and TPM; the full's disks and compression
    /// and format version (most members are copied from it); and a warning naming every consolidated stream.
    /// </summary>
    internal static Manifest Manifest(ChainIndex index, string toolVersion)
    {
        var full = index.Streams[0].Manifest;
        var newest = index.Newest;
        var sources = string.Join(", ", index.Streams.Select(s =>
            $"{StreamRules.LevelName(s.Manifest.Level)} '{s.Manifest.Checkpoint}' ({s.Manifest.CreatedUtc:yyyy-MM-ddTHH:mm:ssZ})"));
        return newest with
        {
            ToolVersion = toolVersion,
            Level = BackupLevel.Full,
            ParentCheckpoint = null,
            FormatVersion = full.FormatVersion,
            Compression = full.Compression,
            Disks = full.Disks,
            Warnings = [.. newest.Warnings.Where(w => !w.StartsWith(WarningPrefix, StringComparison.Ordinal)),
                $"{WarningPrefix}consolidated from {index.StreamCount} stream(s) of chain '{newest.ChainId}': {sources}"],
        };
    }

    private static byte[] Read(StreamFile file, string name) =>
        MemberReader.Small(file, file.Members.FirstOrDefault(m => m.Name == name)
            ?? throw StreamFile.Bad(file.Path, name, "the trailer does not list it"));
}
