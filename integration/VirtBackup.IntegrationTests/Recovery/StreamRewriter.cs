namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// Rewrites a real stream member by member with the project's writer, changing the TPM files' content: a stream
/// whose every checksum and trailer are valid but whose TPM state is not the guest's (for "swtpm refuses it").
/// </summary>
internal static class StreamRewriter
{
    public static async Task<byte[]> WithTpmContentAsync(byte[] stream, Func<string, byte[], byte[]> tpm)
    {
        var output = new MemoryStream();
        BackupStreamWriter? writer = null;
        try
        {
            await foreach (var member in new BackupStreamReader(new MemoryStream(stream)).ReadAsync())
            {
                switch (member)
                {
                    case ManifestMember m:
                        var c = m.Manifest.Compression;
                        var options = c.Algorithm == Compression.Zstd ? StreamWriterOptions.Zstd(c.Level, c.MemberSize) : StreamWriterOptions.Uncompressed(c.MemberSize);
                        writer = new BackupStreamWriter(output, options);
                        await writer.WriteManifestAsync(m.Manifest, CancellationToken.None);
                        break;
                    case DomainXmlMember x:
                        await writer!.WriteDomainXmlAsync(x.Xml, CancellationToken.None);
                        break;
                    case NvramMember n:
                        await writer!.WriteNvramAsync(n.FileName, n.Content.ToArray(), CancellationToken.None);
                        break;
                    case TpmFileMember t:
                        await writer!.WriteTpmFileAsync(t.RelativePath, tpm(t.RelativePath, t.Content.ToArray()), CancellationToken.None);
                        break;
                    case DiskMapMember d when d.IsFirstPiece && d.IsLastPiece:
                        await writer!.WriteDiskMapAsync(d.Disk.Target, d.Map.Extents, CancellationToken.None);
                        break;
                    case DiskMapMember d: // one piece of a version-3 map of several
                        await writer!.WriteDiskMapPieceAsync(d.Disk.Target, d.Map.Extents, CancellationToken.None);
                        break;
                    case DiskDataMember d:
                        foreach (var s in d.Segments)
                        {
                            await writer!.WriteDiskDataAsync(d.Target, s.DiskOffset, d.Data.Slice(s.ContentOffset, s.Length).ToArray(), CancellationToken.None);
                        }

                        break;
                    case TrailerMember:
                        await writer!.CompleteAsync(CancellationToken.None);
                        break;
                }
            }
        }
        finally
        {
            if (writer is not null)
            {
                await writer.DisposeAsync();
            }
        }

        return output.ToArray();
    }
}
