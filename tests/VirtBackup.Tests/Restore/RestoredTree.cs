using System.Security.Cryptography;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Restore;

/// <summary>A temporary target root and the paths a restore must produce in it.</summary>
internal sealed class RestoredTree : IDisposable
{
    private readonly TempDir _dir = new();

    public RestoredTree()
    {
        Root = _dir.File("root");
        Directory.CreateDirectory(Root);
    }

    /// <summary>The target root, alone in its own temporary directory.</summary>
    public string Root { get; }

    /// <summary>The directory holding <see cref="Root"/>: nothing else may appear there.</summary>
    public string Parent => _dir.Path;

    public string Images => Path.Combine(Root, "var/lib/libvirt/images");

    public string Disk(string target, DiskFormat format = DiskFormat.Raw, string name = ChainFixtures.DomainName) =>
        Path.Combine(Images, $"{name}-{target}.{(format == DiskFormat.Raw ? "img" : "qcow2")}");

    public string Nvram(string name = ChainFixtures.DomainName) => Path.Combine(Root, $"var/lib/libvirt/qemu/nvram/{name}_VARS.fd");

    public string TpmDirectory(string uuid = ChainFixtures.DomainUuid) => Path.Combine(Root, $"var/lib/libvirt/swtpm/{uuid}/tpm2");

    public string ChainPosition(string name = ChainFixtures.DomainName) => Path.Combine(Images, ".virtbackup", $"{name}.chain.json");

    public string Definition(string name = ChainFixtures.DomainName) => Path.Combine(Images, ".virtbackup", $"{name}.xml");

    /// <summary>Builds <paramref name="spec"/>'s stream and restores it in-process under <see cref="Root"/>.</summary>
    public async Task<RestoreResult> RestoreAsync(StreamSpec spec, DiskFormat format = DiskFormat.Raw, bool force = false, string? asName = null) =>
        await RestoreAsync(await ChainFixtures.BuildAsync(spec), format, force, asName);

    /// <summary>Restores <paramref name="stream"/> in-process under <see cref="Root"/>, like <c>virtbackup restore --target-root</c>.</summary>
    public Task<RestoreResult> RestoreAsync(byte[] stream, DiskFormat format = DiskFormat.Raw, bool force = false, string? asName = null) =>
        ChainFixtures.RestoreAsync(stream, Root, format, force, asName);

    /// <summary>Restores <paramref name="spec"/> expecting the refusal <typeparamref name="T"/>, and asserts the tree is left as it was.</summary>
    public async Task<T> RefusedAsync<T>(StreamSpec spec)
        where T : Exception => await RefusedAsync<T>(await ChainFixtures.BuildAsync(spec));

    /// <summary>Restores <paramref name="stream"/> expecting the refusal <typeparamref name="T"/>, and asserts the tree is left as it was.</summary>
    public async Task<T> RefusedAsync<T>(byte[] stream)
        where T : Exception
    {
        var before = Snapshot();
        var e = await Assert.ThrowsAsync<T>(() => RestoreAsync(stream));
        Assert.Equal(before, Snapshot());
        return e;
    }

    /// <summary>Every file and directory below the root: path → kind, mode, size and SHA-256 of the content.</summary>
    public SortedDictionary<string, string> Snapshot() => Snapshot(Root);

    public static SortedDictionary<string, string> Snapshot(string root)
    {
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, path);
            var mode = Convert.ToString((int)File.GetUnixFileMode(path), 8);
            entries[relative] = Directory.Exists(path)
                ? $"d {mode}"
                : $"f {mode} {new FileInfo(path).Length} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)))}";
        }

        return entries;
    }

    /// <summary>Files (not directories) below the root.</summary>
    public IReadOnlyList<string> Files() =>
        Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(Root, p)).Order(StringComparer.Ordinal).ToList();

    /// <summary>Anything a restore left while staging.</summary>
    public IReadOnlyList<string> StagingLeftovers() =>
        Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).StartsWith(StagingDirectory.Prefix, StringComparison.Ordinal) || p.EndsWith(".tmp", StringComparison.Ordinal))
            .ToList();

    /// <summary>Copies the tree below the root of <paramref name="source"/> into this root (contents and modes).</summary>
    public void CopyFrom(RestoredTree source)
    {
        foreach (var path in Directory.EnumerateFileSystemEntries(source.Root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var target = Path.Combine(Root, Path.GetRelativePath(source.Root, path));
            if (Directory.Exists(path))
            {
                Directory.CreateDirectory(target, File.GetUnixFileMode(path));
            }
            else
            {
                File.Copy(path, target);
                File.SetUnixFileMode(target, File.GetUnixFileMode(path));
                File.SetLastWriteTimeUtc(target, File.GetLastWriteTimeUtc(path));
            }
        }
    }

    public void Dispose() => _dir.Dispose();
}
