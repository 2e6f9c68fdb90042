using System.Globalization;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// Where and how to reach a remote hypervisor with the system OpenSSH client, as libvirt's
/// <c>qemu+ssh://</c> transport does: <see cref="Host"/> may be an alias of <c>~/.ssh/config</c>, and
/// whatever is not given here (user, port, keys, known hosts) comes from the ssh configuration.
/// </summary>
/// <param name="Host">Host name, address or ssh_config alias (IPv6 without brackets).</param>
/// <param name="User">Login user (<c>ssh -l</c>); null: ssh's default.</param>
/// <param name="Port">TCP port (<c>ssh -p</c>); null: ssh's default.</param>
/// <param name="KeyFile">Identity file (<c>ssh -i</c>), libvirt's <c>keyfile=</c>.</param>
/// <param name="NoVerify">libvirt's <c>no_verify=1</c>: <c>-o StrictHostKeyChecking=no</c>.</param>
/// <param name="Options">Further ssh command-line arguments, e.g. <c>["-o", "ProxyJump=bastion"]</c>.</param>
public sealed record SshTarget(
    string Host,
    string? User = null,
    int? Port = null,
    string? KeyFile = null,
    bool NoVerify = false,
    IReadOnlyList<string>? Options = null)
{
    private static readonly string[] SshTransports = ["ssh", "libssh", "libssh2"];

    /// <summary>The ssh options, never null.</summary>
    public IReadOnlyList<string> Options { get; init; } = Options ?? [];

    /// <summary>True when <paramref name="libvirtUri"/> is a libvirt URI whose transport is SSH
    /// (<c>DRIVER+ssh://</c>, <c>+libssh</c>, <c>+libssh2</c>) and names a host.</summary>
    public static bool IsSshUri(string libvirtUri) => TryParse(libvirtUri, null, out _, out _);

    /// <summary>
    /// The host part of a libvirt URI like <c>qemu+ssh://USER@HOST:PORT/system?keyfile=K&amp;no_verify=1</c>.
    /// Query parameters other than <c>keyfile</c> and <c>no_verify</c> belong to libvirt and are ignored.
    /// </summary>
    /// <param name="sshOptions">Extra ssh arguments, e.g. from the configuration file.</param>
    /// <exception cref="FormatException">Not an SSH libvirt URI, or a bad port or parameter.</exception>
    public static SshTarget FromLibvirtUri(string libvirtUri, IReadOnlyList<string>? sshOptions = null) =>
        TryParse(libvirtUri, sshOptions, out var target, out var error)
            ? target
            : throw new FormatException($"'{libvirtUri}' is not a usable libvirt SSH URI: {error}");

    private static bool TryParse(string text, IReadOnlyList<string>? sshOptions, out SshTarget target, out string error)
    {
        target = null!;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            error = "not a URI";
            return false;
        }

        var plus = uri.Scheme.IndexOf('+', StringComparison.Ordinal);
        if (plus < 0 || !SshTransports.Contains(uri.Scheme[(plus + 1)..], StringComparer.OrdinalIgnoreCase))
        {
            error = "the transport is not ssh (expected DRIVER+ssh://[USER@]HOST[:PORT]/...)";
            return false;
        }

        var host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
        if (host.Length == 0)
        {
            error = "no host";
            return false;
        }

        if (host.StartsWith('-'))
        {
            error = "a host cannot start with '-'";
            return false;
        }

        string? user = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (user.Length == 0 || user.StartsWith('-'))
            {
                error = $"bad user '{user}'";
                return false;
            }
        }

        string? keyFile = null;
        var noVerify = false;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..]);
            switch (name)
            {
                case "keyfile":
                    keyFile = value.Length > 0 ? value : null;
                    break;
                case "no_verify":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var flag))
                    {
                        error = $"no_verify must be a number, not '{value}'";
                        return false;
                    }

                    noVerify = flag != 0;
                    break;
            }
        }

        target = new SshTarget(host, user, uri.Port < 0 ? null : uri.Port, keyFile, noVerify, sshOptions);
        error = string.Empty;
        return true;
    }

    /// <summary>The arguments that select this target for a connecting ssh (before the final <c>-- HOST</c>).</summary>
    internal IEnumerable<string> ConnectionArguments()
    {
        if (KeyFile is not null)
        {
            yield return "-i";
            yield return KeyFile;
        }

        if (NoVerify)
        {
            yield return "-o";
            yield return "StrictHostKeyChecking=no";
        }

        foreach (var option in Options)
        {
            yield return option;
        }

        if (User is not null)
        {
            yield return "-l";
            yield return User;
        }

        if (Port is { } port)
        {
            yield return "-p";
            yield return port.ToString(CultureInfo.InvariantCulture);
        }
    }

    /// <summary><c>user@host:port</c> with what is known here.</summary>
    public override string ToString() =>
        (User is null ? string.Empty : User + "@") + (Host.Contains(':') ? $"[{Host}]" : Host) + (Port is { } p ? ":" + p.ToString(CultureInfo.InvariantCulture) : string.Empty);

    public bool Equals(SshTarget? other) =>
        other is not null
        && Host == other.Host
        && User == other.User
        && Port == other.Port
        && KeyFile == other.KeyFile
        && NoVerify == other.NoVerify
        && Options.SequenceEqual(other.Options);

    public override int GetHashCode() =>
        HashCode.Combine(Host, User, Port, KeyFile, NoVerify, Options.Count);
}
