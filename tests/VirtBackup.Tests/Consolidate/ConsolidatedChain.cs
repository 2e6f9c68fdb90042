using VirtBackup.Core.Consolidate;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Consolidate;

/// <summary>
/// The fixture chain (a full and three incrementals, see <see cref="ChainFixtures"/>) as stream files in a
/// temporary directory of its own, plus the next incremental, which a synthetic full must accept.
/// </summary>
internal sealed class ConsolidatedChain : IDisposable
{
    private readonly TempDir _dir;

    private ConsolidatedChain(TempDir dir, IReadOnlyList<StreamSpec> specs, IReadOnlyList<byte[]> streams, IReadOnlyList<string> paths, StreamSpec later)
    {
        _dir = dir;
        Specs = specs;
        Streams = streams;
        Paths = paths;
        Later = later;
    }

    public IReadOnlyList<StreamSpec> Specs { get; }
    public IReadOnlyList<byte[]> Streams { get; }
    public IReadOnlyList<string> Paths { get; }

    /// <summary>The incremental taken after the last stream of the chain.</summary>
    public StreamSpec Later { get; }

    public string Dir => _dir.Path;

    /// <summary>The chain; its incrementals in <paramref name="incrementalFormatVersion"/> when given (a chain that spans an upgrade).</summary>
    public static async Task<ConsolidatedChain> CreateAsync(Compression compression = Compression.Zstd, int formatVersion = Manifest.CurrentFormatVersion,
        int? incrementalFormatVersion = null)
    {
        var specs = new List<StreamSpec> { ChainFixtures.Full(compression: compression) with { FormatVersion = formatVersion } };
        for (var i = 2; i <= 4; i++)
        {
            specs.Add(ChainFixtures.Next(specs[^1], i, i * 100) with { FormatVersion = incrementalFormatVersion ?? formatVersion });
        }

        var later = ChainFixtures.Next(specs[^1], 5, 500);
        var streams = new List<byte[]>();
        foreach (var spec in specs)
        {
            streams.Add(await ChainFixtures.BuildAsync(spec));
        }

        var dir = new TempDir();
        var paths = new List<string>();
        for (var i = 0; i < streams.Count; i++)
        {
            paths.Add(dir.File($"{i}-{specs[i].Level}.tar"));
            await File.WriteAllBytesAsync(paths[^1], streams[i]);
        }

        return new ConsolidatedChain(dir, specs, streams, paths, later);
    }

    /// <summary>Consolidates <paramref name="paths"/> (default: the whole chain) in-process.</summary>
    public async Task<(byte[] Stream, ConsolidateResult Result)> ConsolidateAsync(IReadOnlyList<string>? paths = null)
    {
        var output = new MemoryStream();
        var result = await SyntheticFull.WriteAsync(paths ?? Paths, output, ManifestBuilder.ToolVersion, Serilog.Core.Logger.None, CancellationToken.None);
        return (output.ToArray(), result);
    }

    public void Dispose() => _dir.Dispose();
}
