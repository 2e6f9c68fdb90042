namespace VirtBackup.Tests.Consolidate;

/// <summary>
/// A full and two incrementals of one disk of any virtual size with 4 MiB of data (a few members at its start,
/// middle and end), written with the stream writer without ever holding the disk image.
/// </summary>
internal static class SparseChain
{
    private const int Mi = 1024 * 1024;

    public static async Task<IReadOnlyList<byte[]>> BuildAsync(long virtualSize)
    {
        var middle = virtualSize / 2;
        return
        [
            await StreamAsync(BackupLevel.Full, 1, virtualSize,
                [new(0, 2 * Mi, false), new(2 * Mi, Mi, true), new(middle, Mi, false), new(virtualSize - Mi, Mi, false)]),
            await StreamAsync(BackupLevel.Inc, 2, virtualSize, [new(Mi / 2, 64 * 1024, false), new(middle + 4096, 8192, true)]),
            await StreamAsync(BackupLevel.Inc, 3, virtualSize, [new(virtualSize / 4, 128 * 1024, false)]),
        ];
    }

    private static async Task<byte[]> StreamAsync(BackupLevel level, int sequence, long virtualSize, DiskExtent[] extents)
    {
        var options = StreamFixtures.Options(Compression.Zstd, 1 * Mi);
        var manifest = ChainFixtures.OneDiskManifest("sparse", level, sequence, options,
            new ManifestDisk("vda", DiskFormat.Raw, virtualSize, false, null), FreezeState.Off);
        var output = new MemoryStream();
        await using (var writer = new BackupStreamWriter(output, options))
        {
            var cancellationToken = CancellationToken.None;
            await writer.WriteManifestAsync(manifest, cancellationToken);
            await writer.WriteDomainXmlAsync(ChainFixtures.DomainXml, cancellationToken);
            await writer.WriteDiskMapAsync("vda", extents, cancellationToken);
            foreach (var e in extents.Where(e => !e.Zero))
            {
                for (var pos = e.Offset; pos < e.End; pos += Mi)
                {
                    var n = (int)Math.Min(Mi, e.End - pos);
                    await writer.WriteDiskDataAsync("vda", pos, StreamFixtures.Content(n, sequence * 1000 + (int)(pos / Mi % 1000)), cancellationToken);
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        return output.ToArray();
    }
}
