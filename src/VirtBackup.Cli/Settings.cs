using VirtBackup.CliApp.Verbs;
using VirtBackup.Core.Config;

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
}
