using VirtBackup.CliApp.Verbs;
using VirtBackup.Core.Chain;
using VirtBackup.Core.Config;
using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp;

/// <summary>Settings that come from options, the environment or the config file.</summary>
internal static class Settings
{
    public static ConfigFile Config(ParsedOptions options, VerbContext context)
    {
        var explicitPath = options.Value("config") ?? context.Environment("VIRTBACKUP_CONFIG");
        return ConfigFile.Load(explicitPath ?? ConfigFile.DefaultPath, mustExist: explicitPath is not null);
    }

    public static string ConnectUri(ParsedOptions options, VerbContext context) =>
        ConnectionUri.Resolve(options.Value("connect"), context.Environment, Config(options, context));

    /// <summary>
    /// Where the checkpoint chain is remembered: <c>--state-dir</c>, else <c>state-dir = DIR</c> in the config
    /// file (so a backup host's wrapper, e.g. Bacula's reader, needs no extra option), else the default.
    /// </summary>
    /// <summary>
    /// The chain a backup belongs to: <c>--chain NAME</c>, else <c>chain = NAME</c> in the config file, else null (the
    /// unnamed chain); a name outside <see cref="ChainName.Rule"/> is a usage error.
    /// </summary>
    public static string? Chain(ParsedOptions options, VerbContext context)
    {
        var chain = options.Value("chain") ?? Config(options, context)[ChainKey];
        return chain is null || ChainName.IsValid(chain)
            ? chain
            : throw new UsageException($"--chain: {ChainName.Problem(chain)}");
    }

    /// <summary>The config file key that gives <c>--chain</c>.</summary>
    public const string ChainKey = "chain";

    public static string StateDirectory(ParsedOptions options, VerbContext context) =>
        options.Value("state-dir") ?? Config(options, context)["state-dir"] ?? ChainStore.DefaultDirectory;
}
