using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>Who owns the directories on the way to a path, on this machine.</summary>
public sealed partial class LocalHostFiles
{
    public Task<IReadOnlyList<HostPathOwnership>> StatAncestorsAsync(string path, CancellationToken cancellationToken)
    {
        var result = new List<HostPathOwnership>();
        foreach (var directory in HostPathOwnership.Ancestors(path))
        {
            if (Posix.Ownership(directory) is not { } owned || (owned.Mode & DirectoryType) != DirectoryType)
            {
                break;
            }

            result.Add(new HostPathOwnership(directory, owned.Uid, owned.Gid, (UnixFileMode)(owned.Mode & 0b111_111_111_111)));
        }

        return Task.FromResult<IReadOnlyList<HostPathOwnership>>(result);
    }

    private const int DirectoryType = 0x4000; // S_IFDIR (S_IFMT is 0xf000)
}
