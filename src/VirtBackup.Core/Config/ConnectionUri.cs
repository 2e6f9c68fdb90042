namespace VirtBackup.Core.Config;

/// <summary>Decides which libvirt URI to use, in the documented order.</summary>
public static class ConnectionUri
{
    public const string Default = "qemu:///system";

    /// <summary>
    /// <c>--connect</c>, else <c>VIRTBACKUP_CONNECT</c>, else <c>LIBVIRT_DEFAULT_URI</c>, else the config
    /// file's <c>connect</c>, else <c>qemu:///system</c>.
    /// </summary>
    public static string Resolve(string? commandLine, Func<string, string?> environment, ConfigFile config)
    {
        foreach (var candidate in new[]
                 {
                     commandLine,
                     environment("VIRTBACKUP_CONNECT"),
                     environment("LIBVIRT_DEFAULT_URI"),
                     config["connect"],
                 })
        {
            if (!string.IsNullOrWhiteSpace(candidate))
            {
                return candidate.Trim();
            }
        }

        return Default;
    }
}
