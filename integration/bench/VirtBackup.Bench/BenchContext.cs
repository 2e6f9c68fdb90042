using VirtBackup.Core.Libvirt;

namespace VirtBackup.Bench;

/// <summary>What the benchmarks share: options, the libvirt connection, and numbers one benchmark hands the next.</summary>
internal sealed class BenchContext(BenchOptions options, LibvirtConnection libvirt, Tool tool, long allocatedBytes)
{
    public BenchOptions Options { get; } = options;

    public LibvirtConnection Libvirt { get; } = libvirt;

    public Tool Tool { get; } = tool;

    /// <summary>Bytes allocated on vda of the 4 GiB and the 32 GiB VM (the size of the data file).</summary>
    public long AllocatedBytes { get; } = allocatedBytes;

    /// <summary>nbdcopy's seconds from benchmark 1, for the floor of benchmark 2.</summary>
    public Samples? NbdcopySeconds { get; set; }

    /// <summary>Peak RSS of our full backups of the 4 GiB disk, from benchmark 2, for benchmark 4.</summary>
    public Samples? Rss4G { get; set; }

    /// <summary>The order of ours (true) and the peer (false) in run <paramref name="i"/>: alternating, so neither always goes first.</summary>
    public static bool[] Alternate(int i) => i % 2 == 0 ? [true, false] : [false, true];

    private readonly Dictionary<string, string> _fullStreams = [];

    /// <summary>
    /// A <c>--level full</c> stream file of <paramref name="domain"/> (zstd, the default), made once, untimed, and
    /// shared by the benchmarks that read one (boot, serve).
    /// </summary>
    public async Task<string> FullStreamAsync(string domain)
    {
        if (!_fullStreams.TryGetValue(domain, out var path))
        {
            path = Path.Combine(StateDirectory("streams"), $"{domain}.full.vbk");
            await Tool.ToFileAsync(path, Options.VirtBackup, "backup", "--domain", domain, "--level", "full", "--state-dir", StateDirectory("streams-state"));
            _fullStreams[domain] = path;
        }

        return path;
    }

    public string StateDirectory(string name)
    {
        var path = Path.Combine(Options.WorkDirectory, name);
        Directory.CreateDirectory(path);
        return path;
    }
}
