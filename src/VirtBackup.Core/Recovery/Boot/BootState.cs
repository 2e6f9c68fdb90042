using System.Security.Cryptography;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// What a boot needs besides the disks, read by seeking from the newest stream file of the chain (the state at
/// the served disks' instant): the domain XML, the NVRAM file and the TPM state files, each checked against the
/// trailer's SHA-256.
/// </summary>
public sealed record BootState(Manifest Manifest, string DomainXml, byte[]? Nvram, IReadOnlyList<(string RelativePath, byte[] Content)> TpmFiles)
{
    public static BootState Read(string newestStreamPath)
    {
        using var stream = StreamFile.Open(newestStreamPath);
        string? xml = null;
        byte[]? nvram = null;
        var tpm = new List<(string, byte[])>();
        foreach (var member in stream.Members)
        {
            if (member.Name == MemberNames.DomainXml)
            {
                xml = StreamJson.DecodeUtf8(ReadChecked(stream, member), member.Name);
            }
            else if (member.Name.StartsWith(MemberNames.NvramPrefix, StringComparison.Ordinal))
            {
                nvram = ReadChecked(stream, member);
            }
            else if (member.Name.StartsWith(MemberNames.TpmPrefix, StringComparison.Ordinal))
            {
                tpm.Add((member.Name[MemberNames.TpmPrefix.Length..], ReadChecked(stream, member)));
            }
        }

        if (xml is null)
        {
            throw StreamFile.Bad(newestStreamPath, MemberNames.DomainXml, "the trailer does not list the domain XML");
        }

        if (stream.Manifest.NvramPresent && nvram is null)
        {
            throw StreamFile.Bad(newestStreamPath, MemberNames.NvramPrefix + "*", "the manifest announces NVRAM the trailer does not list");
        }

        if (stream.Manifest.Tpm.Present && tpm.Count == 0)
        {
            throw StreamFile.Bad(newestStreamPath, MemberNames.TpmPrefix + "*", "the manifest announces TPM state the trailer does not list");
        }

        foreach (var (path, _) in tpm)
        {
            if (MemberNames.InvalidRelativePath(path) is { } problem)
            {
                throw StreamFile.Bad(newestStreamPath, MemberNames.TpmPrefix + path, problem);
            }
        }

        return new BootState(stream.Manifest, xml, nvram, tpm);
    }

    private static byte[] ReadChecked(StreamFile stream, StoredMember member)
    {
        if (member.Size > StreamRules.MaxStateFileSize && member.Name != MemberNames.DomainXml)
        {
            throw StreamFile.Bad(stream.Path, member.Name, $"{member.Size} bytes is more than the {StreamRules.MaxStateFileSize} allowed");
        }

        if (member.StoredSize != member.Size)
        {
            throw StreamFile.Bad(stream.Path, member.Name, "a state member is stored compressed");
        }

        var bytes = StreamFile.ReadContent(stream.Handle, stream.Path, member);
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != member.Sha256)
        {
            throw StreamFile.Bad(stream.Path, member.Name, "its SHA-256 differs from the trailer's (the stream file is corrupted)");
        }

        return bytes;
    }
}
