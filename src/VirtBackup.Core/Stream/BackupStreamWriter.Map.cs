using System.Security.Cryptography;

namespace VirtBackup.Core.Stream;

/// <summary>The version-2 map member, written from the extents in pieces of a member buffer each: no whole-map text.</summary>
public sealed partial class BackupStreamWriter
{
    private async Task EnqueueMapTextAsync(string name, DiskMapText.Text text, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = _slotPool.Rent();
        TarHeader.Write(buffer.AsSpan(0, TarHeader.BlockSize), name, text.Size);
        var filled = TarHeader.BlockSize;
        long written = 0;
        try
        {
            while (true)
            {
                // The last block of the buffer stays free for the padding.
                var n = text.Fill(buffer.AsSpan(filled, buffer.Length - TarHeader.BlockSize - filled));
                sha.AppendData(buffer.AsSpan(filled, n));
                filled += n;
                written += n;
                if (text.IsDone)
                {
                    break;
                }

                var piece = buffer;
                buffer = null;
                await EnqueueAsync(Task.FromResult(new ReadyMember(piece, filled, null, _slotPool)), cancellationToken).ConfigureAwait(false);
                buffer = _slotPool.Rent();
                filled = 0;
            }

            if (written != text.Size)
            {
                throw new InvalidOperationException($"The map text of '{name}' has {written} bytes, not the {text.Size} announced.");
            }

            var padding = TarHeader.PaddingFor(written);
            buffer.AsSpan(filled, padding).Clear();
            var entry = new TrailerEntry(name, written, written, Hex(sha.GetHashAndReset()), null);
            var last = buffer;
            buffer = null;
            await EnqueueAsync(Task.FromResult(new ReadyMember(last, filled + padding, entry, _slotPool)), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _slotPool.Return(buffer);
        }
    }
}
