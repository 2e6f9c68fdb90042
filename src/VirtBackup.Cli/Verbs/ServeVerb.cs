using VirtBackup.Core.Recovery;

namespace VirtBackup.CliApp.Verbs;

internal sealed class ServeVerb : IVerb
{
    public string Name => "serve";

    public string Summary => "serve a chain of stream files (a full, then its incrementals in order) read-only over NBD, one export per disk (vda, vdb...), until SIGTERM/SIGINT";

    public string? Operands => "STREAM...";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("socket", "listen on this unix socket (mode 0600; removed on exit)", "PATH"),
        new("listen", "listen on TCP instead, e.g. 127.0.0.1:10809 (port 0: any free port); no TLS, use a trusted network", "ADDR:PORT"),
        new("cache-mib", $"decoded data members kept in memory (default {ChainServer.DefaultCacheBytes / (1024 * 1024)})", "N"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        if (options.Operands.Count == 0)
        {
            throw new UsageException("give the chain's stream files: the full first, then its incrementals in order");
        }

        var socket = options.Value("socket");
        var listen = options.Value("listen");
        if ((socket is null) == (listen is null))
        {
            throw new UsageException("give exactly one of --socket PATH or --listen ADDR:PORT");
        }

        var endpoint = socket is not null
            ? ServeEndpoint.Unix(socket)
            : ServeEndpoint.TryTcp(listen!) ?? throw new UsageException($"--listen takes ADDR:PORT (e.g. 127.0.0.1:10809), not '{listen}'");
        var cacheBytes = options.IntValue("cache-mib", (int)(ChainServer.DefaultCacheBytes / (1024 * 1024)), 8, 65536) * 1024L * 1024;

        await using var server = ChainServer.Start(options.Operands, endpoint, context.Log, cacheBytes);
        var newest = server.Index.Newest;
        context.Log.Information("serving {Domain} at {Checkpoint} ({Streams} stream(s)), ready: {Uris}",
            newest.DomainName, newest.Checkpoint ?? "copy", server.Index.StreamCount, string.Join(" ", server.Exports.Select(e => e.Uri)));
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM/SIGINT: the normal way to stop serving.
        }

        context.Log.Information("stopped serving");
        return ExitCodes.Success;
    }
}
