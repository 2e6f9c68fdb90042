using System.Text.RegularExpressions;

namespace VirtBackup.Core.Libvirt;

/// <summary>
/// The settings VirtBackup reads from libvirt's <c>/etc/libvirt/qemu.conf</c>: the user and group swtpm
/// runs as (and so owns the TPM state), <c>tss</c>/<c>tss</c> when unset; the user and group QEMU runs as
/// and whether libvirt gives the disk images to them (<c>dynamic_ownership</c>), for the restore's check that
/// QEMU can reach its disks. Only <c>key = "value"</c> and <c>key = NUMBER</c> lines count; <c>#</c> starts a
/// comment outside quotes.
/// </summary>
public sealed partial record QemuConf(string SwtpmUser, string SwtpmGroup)
{
    /// <summary>qemu.conf's <c>user</c> (a name, a number, or <c>+UID</c>); null when unset: libvirt's build default
    /// (<c>libvirt-qemu</c> on Debian, <c>qemu</c> on Fedora).</summary>
    public string? User { get; init; }

    /// <summary>qemu.conf's <c>group</c>, as <see cref="User"/>.</summary>
    public string? Group { get; init; }

    /// <summary>qemu.conf's <c>dynamic_ownership</c> (default 1): libvirt chowns a domain's images to QEMU's user at start.</summary>
    public bool DynamicOwnership { get; init; } = true;

    public const string DefaultPath = "/etc/libvirt/qemu.conf";
    public const string DefaultSwtpmUser = "tss";
    public const string DefaultSwtpmGroup = "tss";

    /// <summary>libvirt's defaults, as on a host without a qemu.conf.</summary>
    public static QemuConf Defaults { get; } = new(DefaultSwtpmUser, DefaultSwtpmGroup);

    /// <summary>Reads the local qemu.conf; a missing file, or one this user may not read (it is root's, 0600), means the defaults.</summary>
    public static QemuConf Load(string path = DefaultPath)
    {
        try
        {
            return File.Exists(path) ? Parse(File.ReadAllText(path)) : Defaults;
        }
        catch (UnauthorizedAccessException)
        {
            // A backup as a non-root user: the swtpm user only words the advice when the TPM state is unreadable.
            return Defaults;
        }
    }

    /// <summary>Parses qemu.conf text (read locally or fetched from a remote host).</summary>
    public static QemuConf Parse(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var match = Setting().Match(StripComment(line));
            if (match.Success)
            {
                values[match.Groups["key"].Value] = match.Groups["number"].Success
                    ? match.Groups["number"].Value
                    : match.Groups["value"].Value.Replace("\\\"", "\"").Replace("\\\\", "\\");
            }
        }

        return new QemuConf(
            values.GetValueOrDefault("swtpm_user", DefaultSwtpmUser),
            values.GetValueOrDefault("swtpm_group", DefaultSwtpmGroup))
        {
            User = values.GetValueOrDefault("user"),
            Group = values.GetValueOrDefault("group"),
            DynamicOwnership = values.GetValueOrDefault("dynamic_ownership") is not { } dynamic || dynamic != "0",
        };
    }

    private static string StripComment(string line)
    {
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            switch (line[i])
            {
                case '\\' when quoted:
                    i++;
                    break;
                case '"':
                    quoted = !quoted;
                    break;
                case '#' when !quoted:
                    return line[..i];
            }
        }

        return line;
    }

    [GeneratedRegex("""^\s*(?<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"(?<value>(?:[^"\\]|\\.)*)"|(?<number>[0-9]+))\s*$""")]
    private static partial Regex Setting();
}
