using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// One seekable stream file, opened for positional reads from any thread. Opening reads only its end (the
/// trailer), its manifest and its disk maps; where every other member lies follows from the trailer (§6 of
/// FORMAT.md: canonical 512-byte headers, content padded to 512), so opening costs the same whatever the disk size.
/// </summary>
internal sealed class StreamFile(
    string path, SafeFileHandle handle, long length, Manifest manifest, Trailer trailer, IReadOnlyList<StoredMember> members, IReadOnlyDictionary<string, StreamDisk> disks)
    : IDisposable
{
    public string Path { get; } = path;
    public SafeFileHandle Handle { get; } = handle;
    public long Length { get; } = length;
    public Manifest Manifest { get; } = manifest;
    public Trailer Trailer { get; } = trailer;

    /// <summary>The disks this stream carries (not excluded), by target.</summary>
    public IReadOnlyDictionary<string, StreamDisk> Disks { get; } = disks;

    public string Describe => $"'{Path}' ({StreamRules.LevelName(Manifest.Level)} {Manifest.Checkpoint ?? "copy"}, taken {Manifest.CreatedUtc:u})";

    public static StreamFile Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StreamFileException($"cannot open stream file '{path}': {e.Message}", e);
        }

        try
        {
            var length = RandomAccess.GetLength(handle);
            var (trailerOffset, trailerSize) = TrailerLocator.Find(handle, length, path);
            var trailerBytes = ReadContent(handle, path, new StoredMember(MemberNames.Trailer, trailerOffset, trailerSize, trailerSize, ""));
            var trailer = StreamJson.DeserializeTrailer(trailerBytes, MemberNames.Trailer);
            if (trailer.FormatVersion is < 1 or > Manifest.MaxFormatVersion || trailer.Members is null || trailer.MemberCount != trailer.Members.Count)
            {
                throw Bad(path, MemberNames.Trailer, "format version or member count is wrong");
            }

            var members = MemberLayout.Locate(handle, path, trailer, trailerOffset);
            var manifest = ReadManifest(handle, path, trailer, members);
            var disks = ReadDisks(handle, path, manifest, members);
            return new StreamFile(path, handle, length, manifest, trailer, members, disks);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static Manifest ReadManifest(SafeFileHandle handle, string path, Trailer trailer, IReadOnlyList<StoredMember> members)
    {
        if (members.Count == 0 || members[0].Name != MemberNames.Manifest)
        {
            throw Bad(path, MemberNames.Manifest, "the trailer does not list the manifest first");
        }

        var entry = members[0];
        if (entry.Size > StreamRules.MaxManifestSize)
        {
            throw Bad(path, entry.Name, $"{entry.Size} bytes is more than the {StreamRules.MaxManifestSize} allowed");
        }

        var bytes = ReadChecked(handle, path, entry);
        if (entry.Sha256 != trailer.ManifestSha256)
        {
            throw Bad(path, MemberNames.Trailer, "manifestSha256 is not the manifest's SHA-256");
        }

        var manifest = StreamJson.DeserializeManifest(bytes, entry.Name);
        if (StreamRules.ManifestProblem(manifest) is { } problem)
        {
            throw Bad(path, entry.Name, problem);
        }

        if (trailer.DomainUuid != manifest.DomainUuid || trailer.ChainId != manifest.ChainId || trailer.Checkpoint != manifest.Checkpoint)
        {
            throw Bad(path, MemberNames.Trailer, "domainUuid, chainId or checkpoint differ from the manifest's");
        }

        return manifest;
    }

    private static Dictionary<string, StreamDisk> ReadDisks(SafeFileHandle handle, string path, Manifest manifest, IReadOnlyList<StoredMember> members)
    {
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < members.Count; i++)
        {
            byName.TryAdd(members[i].Name, i);
        }

        var disks = new Dictionary<string, StreamDisk>(StringComparer.Ordinal);
        var version = manifest.FormatVersion;
        foreach (var disk in manifest.Disks.Where(d => !d.Excluded))
        {
            // From version 3: the pieces of the map, joined into one map of the disk.
            var extents = new ExtentList();
            var firstData = -1;
            for (var piece = 0; piece < StreamRules.MapPieceCount(disk.VirtualSize, version); piece++)
            {
                var (start, end) = StreamRules.MapPieceRange(disk.VirtualSize, piece, version);
                var mapName = version >= 3 ? MemberNames.DiskMapPiece(disk.Target, start) : MemberNames.DiskMap(disk.Target, version);
                if (!byName.TryGetValue(mapName, out var index))
                {
                    throw Bad(path, mapName, "the trailer does not list this disk's map");
                }

                var mapEntry = members[index];
                if (mapEntry.Size > StreamRules.MaxMapSize)
                {
                    throw Bad(path, mapName, $"{mapEntry.Size} bytes is more than the {StreamRules.MaxMapSize} allowed");
                }

                var mapBytes = ReadChecked(handle, path, mapEntry);
                var map = version >= 2 ? DiskMapText.Parse(mapBytes, mapName) : StreamJson.DeserializeMap(mapBytes, mapName);
                if (map.Target != disk.Target || map.VirtualSize != disk.VirtualSize)
                {
                    throw Bad(path, mapName, "target or virtualSize differ from the manifest's");
                }

                if ((StreamRules.CanonicalMapProblem(map.Extents, map.VirtualSize) ?? StreamRules.PieceRangeProblem(map.Extents, start, end)) is { } problem)
                {
                    throw Bad(path, mapName, problem);
                }

                foreach (var e in map.Extents)
                {
                    extents.AddMerged(e);
                }

                firstData = firstData < 0 ? index + 1 : firstData;
            }

            disks[disk.Target] = new StreamDisk(disk, new DiskMap(disk.Target, disk.VirtualSize, extents), firstData);
        }

        return disks;
    }

    /// <summary>The data members of <paramref name="disk"/>, as the map and member size imply them, checked against the trailer.</summary>
    public IReadOnlyList<DataMember> DataMembers(StreamDisk disk)
    {
        var compression = Manifest.Compression;
        var members = Members;
        var result = new List<DataMember>();
        var index = disk.FirstDataIndex;
        foreach (var plan in StreamRules.Members(disk.Map.Extents, compression.MemberSize, Manifest.FormatVersion))
        {
            var (offset, length) = (plan.Offset, plan.Length);
            var name = MemberNames.DiskData(disk.Disk.Target, offset, compression.Algorithm);
            while (index < members.Count && IsMapPiece(members[index].Name, disk.Disk.Target))
            {
                index++; // a version-3 map piece between the data members
            }

            if (index >= members.Count || members[index].Name != name)
            {
                throw Bad(Path, name, "the trailer does not list this member where the map puts it");
            }

            var entry = members[index++];
            var sizeOk = compression.Algorithm == Compression.Zstd
                ? entry.StoredSize >= 4 && entry.StoredSize <= ZstdFrames.CompressBound(length)
                : entry.StoredSize == length;
            if (entry.Size != length || !sizeOk)
            {
                throw Bad(Path, name, $"the trailer's sizes ({entry.StoredSize} stored, {entry.Size}) do not fit {length} bytes of content");
            }

            var zstd = compression.Algorithm == Compression.Zstd;
            if (StreamRules.HashesContent(Manifest.FormatVersion, compression.Algorithm) ? entry.Sha256 is null || zstd != (entry.StoredSha256 is not null)
                : entry.Sha256 is not null || entry.StoredSha256 is null)
            {
                throw Bad(Path, name, $"the trailer's hashes are not those of a {(zstd ? "zstd" : "raw")} member of format version {Manifest.FormatVersion}");
            }

            result.Add(new DataMember(this, entry, plan.Segments, length, compression.Algorithm));
        }

        return result;
    }

    private static bool IsMapPiece(string name, string target) =>
        MemberNames.TryParse(name, out var parsed, out _) && parsed.Kind == MemberKind.DiskMap && parsed.Target == target;

    /// <summary>Every member but the trailer, in stream order, with its position.</summary>
    public IReadOnlyList<StoredMember> Members { get; } = members;

    private static byte[] ReadChecked(SafeFileHandle handle, string path, StoredMember entry)
    {
        var bytes = ReadContent(handle, path, entry);
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != entry.Sha256)
        {
            throw Bad(path, entry.Name, "its SHA-256 differs from the trailer's (the stream file is corrupted)");
        }

        return bytes;
    }

    /// <summary>Reads a member's header and content and checks that the header is the canonical one for its name and size.</summary>
    public static byte[] ReadContent(SafeFileHandle handle, string path, StoredMember entry)
    {
        var header = new byte[TarHeader.BlockSize];
        TrailerLocator.ReadExactly(handle, header, entry.HeaderOffset, path);
        if (HeaderProblem(header, entry) is { } problem)
        {
            throw Bad(path, entry.Name, $"its tar header at byte {entry.HeaderOffset} is not the expected one ({problem})");
        }

        var content = new byte[entry.StoredSize];
        TrailerLocator.ReadExactly(handle, content, entry.DataOffset, path);
        return content;
    }

    /// <summary>Any header flavour the stream reader accepts (docs/FORMAT.md, "Rewritten streams") whose name and size are the member's.</summary>
    public static string? HeaderProblem(ReadOnlySpan<byte> header, StoredMember entry)
    {
        var raw = TarHeader.Inspect(header);
        return raw.ChecksumOk && raw.Flavour != TarFlavour.Unknown && raw.Name == entry.Name && raw.Size == entry.StoredSize
            && raw.TypeFlag is TarHeader.RegularFileType or TarHeader.OldRegularFileType && !raw.HasLinkName
            ? null
            : "name, size, type or checksum differ";
    }

    internal static StreamFormatException Bad(string path, string member, string problem) => new(member, $"in '{path}': {problem}");

    public void Dispose() => Handle.Dispose();
}

/// <summary>A disk a stream carries: its manifest entry, its map, and where its data members start in the trailer.</summary>
internal sealed record StreamDisk(ManifestDisk Disk, DiskMap Map, int FirstDataIndex);

/// <summary>A stream file cannot be opened or read.</summary>
public sealed class StreamFileException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
