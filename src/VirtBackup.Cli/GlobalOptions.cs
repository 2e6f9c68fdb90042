using Serilog.Events;

namespace VirtBackup.CliApp;

/// <summary>Options every verb accepts.</summary>
internal static class GlobalOptions
{
    public static readonly IReadOnlyList<OptionSpec> Specs =
    [
        new("connect", "libvirt URI (else $VIRTBACKUP_CONNECT, $LIBVIRT_DEFAULT_URI, the config file, qemu:///system); qemu+ssh://USER@HOST/system backs up or restores on that host over SSH", "URI"),
        new("config", "config file (default $VIRTBACKUP_CONFIG or /etc/virtbackup/virtbackup.conf)", "FILE"),
        new("log-level", "stderr log level", "LEVEL", ["debug", "info", "warning", "error"]),
        new("help", "show this help on stderr"),
    ];

    public static LogEventLevel LogLevel(ParsedOptions options) => options.Value("log-level") switch
    {
        "debug" => LogEventLevel.Debug,
        "warning" => LogEventLevel.Warning,
        "error" => LogEventLevel.Error,
        _ => LogEventLevel.Information,
    };
}
