using Serilog;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Recovery;

/// <summary>
/// <c>virtbackup serve</c> as one object: a chain of stream files indexed, each of its disks an NBD export named by
/// target, served read-only until disposed (which closes every connection and removes the socket).
/// </summary>
public sealed class ChainServer : IAsyncDisposable
{
    /// <summary>Decoded members kept for reuse: 64 MiB, sixteen 4 MiB members.</summary>
    public const long DefaultCacheBytes = 64L * 1024 * 1024;

    private readonly ChainIndex _index;
    private readonly NbdServer _server;

    private ChainServer(ChainIndex index, NbdServer server, IReadOnlyList<(string Target, string Uri)> exports)
    {
        _index = index;
        _server = server;
        Exports = exports;
    }

    /// <summary>Each served disk's target and NBD URI.</summary>
    public IReadOnlyList<(string Target, string Uri)> Exports { get; }

    public ChainIndex Index => _index;

    public static ChainServer Start(IReadOnlyList<string> streams, ServeEndpoint endpoint, ILogger log,
        long cacheBytes = DefaultCacheBytes, NbdServerLimits? limits = null)
    {
        var index = ChainIndex.Open(streams);
        try
        {
            var cache = new MemberCache(cacheBytes, log);
            var newest = index.Newest;
            var exports = index.Disks
                .Select(d => (INbdExport)new DiskExport(d, cache,
                    $"disk {d.Target} of {newest.DomainName} at {StreamRules.LevelName(newest.Level)} {newest.Checkpoint ?? "copy"} ({newest.CreatedUtc:u})"))
                .ToList();
            if (exports.Count == 0)
            {
                throw new ServeRefusedException("the chain carries no disk (every disk was excluded): nothing to serve");
            }

            var server = NbdServer.Listen(endpoint, exports, limits ?? NbdServerLimits.Default, log);
            var uris = exports.Select(e => (e.Name, endpoint.Uri(e.Name, server.LocalEndPoint))).ToList();
            return new ChainServer(index, server, uris);
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        _index.Dispose();
    }
}
