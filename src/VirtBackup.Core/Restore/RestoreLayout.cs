using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// Where a restored domain's files go. Paths come in two forms: as the restored host sees them (in the domain
/// definition and the chain position) and as written, under the target root when there is one. Every name
/// below a directory is one checked segment: the domain name (<see cref="RestoreName"/>), a disk target and the
/// UUID as validated by the stream reader.
/// <list type="bullet">
/// <item>disks: <c>DISK_DIR/NAME-TARGET.qcow2</c> (or <c>.img</c> for raw)</item>
/// <item>NVRAM: <c>/var/lib/libvirt/qemu/nvram/NAME_VARS.fd</c></item>
/// <item>TPM state: <c>/var/lib/libvirt/swtpm/UUID/tpm2</c> (<c>tpm1.2</c> for a TPM 1.2)</item>
/// <item>chain position and definition: <c>DISK_DIR/.virtbackup/NAME.chain.json</c>, <c>NAME.xml</c></item>
/// </list>
/// </summary>
public sealed class RestoreLayout
{
    public RestoreLayout(string name, string uuid, RestoreOptions options)
    {
        if (RestoreName.Problem(name) is { } problem)
        {
            throw new ArgumentException($"'{name}' cannot name restored files: {problem}", nameof(name));
        }

        Name = name;
        Uuid = uuid;
        TargetRoot = options.TargetRoot is null ? null : Path.GetFullPath(options.TargetRoot);
        DiskDirectory = Path.GetFullPath(options.DiskDirectory);
    }

    public string Name { get; }

    public string Uuid { get; }

    public string? TargetRoot { get; }

    /// <summary>The disk directory as the restored host sees it.</summary>
    public string DiskDirectory { get; }

    /// <summary>Where the chain position and saved definition are written (as written).</summary>
    public string ChainStoreDirectory => Written(Path.Combine(DiskDirectory, ChainPositionStore.DirectoryName));

    /// <summary>The chain position store on the restored host, whose files are <paramref name="files"/>.</summary>
    public ChainPositionStore ChainStore(IHostFiles files) => new(files, ChainStoreDirectory);

    public string DiskPath(string target, DiskFormat format) =>
        Path.Combine(DiskDirectory, $"{Name}-{Segment(target)}.{(format == DiskFormat.Qcow2 ? "qcow2" : "img")}");

    public string NvramPath => Path.Combine(RestoreOptions.NvramDirectory, $"{Name}_VARS.fd");

    /// <summary>libvirt's per-domain swtpm directory (<c>/var/lib/libvirt/swtpm/UUID</c>).</summary>
    public string SwtpmDomainDirectory => Path.Combine(RestoreOptions.SwtpmDirectory, Uuid);

    public string TpmStateDirectory(string? version) =>
        Path.Combine(SwtpmDomainDirectory, version == "1.2" ? "tpm1.2" : "tpm2");

    /// <summary>
    /// <paramref name="path"/> (absolute, as the restored host sees it) as this run writes it: below the target
    /// root when there is one. Refuses a path that would leave the root.
    /// </summary>
    public string Written(string path)
    {
        if (!Path.IsPathRooted(path))
        {
            throw new ArgumentException($"'{path}' is not an absolute path", nameof(path));
        }

        if (TargetRoot is null)
        {
            return Path.GetFullPath(path);
        }

        var written = Path.GetFullPath(Path.Join(TargetRoot, path));
        return IsInside(TargetRoot, written)
            ? written
            : throw new RestoreRefusedException($"'{path}' would be written outside the target root '{TargetRoot}'");
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="directory"/> itself or below it (both full paths).</summary>
    public static bool IsInside(string directory, string path)
    {
        var dir = directory.TrimEnd('/');
        return path == dir || path.StartsWith(dir + "/", StringComparison.Ordinal) || dir.Length == 0;
    }

    private static string Segment(string target) =>
        MemberNames.InvalidTarget(target) is { } problem ? throw new ArgumentException($"disk target '{target}': {problem}") : target;
}
