using Serilog;
using Serilog.Core;
using VirtBackup.Core.Recovery;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Recovery;

/// <summary>
/// A full and two incrementals of <see cref="ChainFixtures"/> as stream files in a unique temp dir, served over a
/// unix socket there; <see cref="Expected"/> is each disk at the last backup. Removed on dispose.
/// </summary>
internal sealed class ServedChain : IAsyncDisposable
{
    private readonly TempDir _dir = new();

    private ServedChain()
    {
    }

    public IReadOnlyList<string> Streams { get; private set; } = [];
    public ChainServer Server { get; private set; } = null!;
    public string Socket => _dir.File("nbd.sock");
    public string Dir => _dir.Path;
    public Dictionary<string, byte[]> Expected { get; } = [];
    public List<string> LogLines { get; } = [];

    public string Uri(string target) => Server.Exports.Single(e => e.Target == target).Uri;

    /// <summary>A full and two incrementals; <paramref name="formatVersions"/> gives each stream's format version.</summary>
    public static async Task<ServedChain> StartAsync(Func<int, byte[], byte[]>? change = null, NbdServerLimits? limits = null, int[]? formatVersions = null,
        long cacheBytes = ChainServer.DefaultCacheBytes)
    {
        var chain = new ServedChain();
        int Version(int i) => formatVersions?[i] ?? Manifest.CurrentFormatVersion;
        var full = ChainFixtures.Full() with { FormatVersion = Version(0) };
        var inc1 = ChainFixtures.Next(full, 2, 300) with { FormatVersion = Version(1) };
        var inc2 = ChainFixtures.Next(inc1, 3, 400) with { FormatVersion = Version(2) };
        var specs = new[] { full, inc1, inc2 };
        var paths = new List<string>();
        for (var i = 0; i < specs.Length; i++)
        {
            var bytes = await ChainFixtures.BuildAsync(specs[i]);
            var path = chain._dir.File($"s{i}.tar");
            await File.WriteAllBytesAsync(path, change?.Invoke(i, bytes) ?? bytes);
            paths.Add(path);
        }

        chain.Streams = paths;
        chain.Expected["vda"] = ChainFixtures.Image(inc2, "vda");
        chain.Expected["vdb"] = ChainFixtures.Image(inc2, "vdb");
        var log = new LoggerConfiguration().WriteTo.Sink(new ListSink(chain.LogLines)).CreateLogger();
        chain.Server = ChainServer.Start(paths, ServeEndpoint.Unix(chain.Socket), log, cacheBytes, limits);
        return chain;
    }

    public async ValueTask DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        _dir.Dispose();
    }

    private sealed class ListSink(List<string> lines) : ILogEventSink
    {
        public void Emit(Serilog.Events.LogEvent logEvent)
        {
            lock (lines)
            {
                lines.Add($"{logEvent.Level} {logEvent.RenderMessage()}");
            }
        }
    }
}
