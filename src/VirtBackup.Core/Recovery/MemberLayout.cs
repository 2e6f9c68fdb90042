using Microsoft.Win32.SafeHandles;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// Where each member of a stream file lies. The trailer gives no offsets, but it lists every member in stream
/// order with its stored size, and every header of a VirtBackup stream is one 512-byte block with the content
/// padded to 512: so the positions are a running sum, and the sum must land exactly on the trailer's header.
/// When it does not (a tar rewritten with extension headers, which the stream reader accepts), the positions
/// come from the headers themselves, seeking from header to header without reading any content.
/// </summary>
internal static class MemberLayout
{
    private const int Block = TarHeader.BlockSize;

    public static IReadOnlyList<StoredMember> Locate(SafeFileHandle file, string path, Trailer trailer, long trailerOffset)
    {
        var result = new List<StoredMember>(trailer.Members.Count);
        long position = 0;
        foreach (var entry in trailer.Members)
        {
            if (entry is null || entry.StoredSize < 0 || entry.StoredSize > TarHeader.MaxSize)
            {
                throw StreamFile.Bad(path, MemberNames.Trailer, "a member entry is null or has an impossible size");
            }

            result.Add(new StoredMember(entry.Name, position, entry.StoredSize, entry.Size, entry.Sha256, entry.StoredSha256));
            position += Block + entry.StoredSize + TarHeader.PaddingFor(entry.StoredSize);
        }

        return position == trailerOffset ? result : Walk(file, path, trailer, trailerOffset);
    }

    /// <summary>Reads only the headers: each regular member's header names it; extension entries before it are skipped.</summary>
    private static List<StoredMember> Walk(SafeFileHandle file, string path, Trailer trailer, long trailerOffset)
    {
        var result = new List<StoredMember>(trailer.Members.Count);
        var header = new byte[Block];
        long position = 0;
        foreach (var entry in trailer.Members)
        {
            while (true)
            {
                if (position >= trailerOffset)
                {
                    throw StreamFile.Bad(path, entry.Name, "member not found before the trailer (the tar does not hold what its trailer lists)");
                }

                TrailerLocator.ReadExactly(file, header, position, path);
                var raw = TarHeader.Inspect(header);
                if (!raw.ChecksumOk || raw.Size < 0)
                {
                    throw StreamFile.Bad(path, entry.Name, $"no valid tar header at byte {position}");
                }

                var next = position + Block + raw.Size + TarHeader.PaddingFor(raw.Size);
                var regular = raw.TypeFlag is (byte)'0' or 0;
                if (regular)
                {
                    if (raw.Name != entry.Name || raw.Size != entry.StoredSize)
                    {
                        throw StreamFile.Bad(path, entry.Name, $"the tar member at byte {position} is '{raw.Name}' of {raw.Size} bytes, not what the trailer lists next");
                    }

                    result.Add(new StoredMember(entry.Name, position, entry.StoredSize, entry.Size, entry.Sha256, entry.StoredSha256));
                    position = next;
                    break;
                }

                position = next; // a pax or GNU extension entry: its member follows
            }
        }

        return result;
    }
}
