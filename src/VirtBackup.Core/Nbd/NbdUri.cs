using System.Globalization;
using System.Text;

namespace VirtBackup.Core.Nbd;

/// <summary>How the client reaches the server.</summary>
public enum NbdTransportKind
{
    Unix,
    Tcp,
}

/// <summary>
/// An NBD server address in the standard URI form (as used by qemu, libnbd, nbdkit):
/// <c>nbd+unix:///EXPORT?socket=PATH</c> or <c>nbd://HOST[:PORT]/EXPORT</c> (default port 10809).
/// The export name is the percent-decoded path without its leading slash; it may be empty.
/// </summary>
public sealed record NbdUri
{
    private NbdUri(NbdTransportKind transport, string exportName, string? socketPath, string? host, int port)
    {
        Transport = transport;
        ExportName = exportName;
        SocketPath = socketPath;
        Host = host;
        Port = port;
    }

    public NbdTransportKind Transport { get; }

    public string ExportName { get; }

    /// <summary>The unix socket path (unix transport only).</summary>
    public string? SocketPath { get; }

    /// <summary>Host name or IP address, IPv6 without brackets (TCP transport only).</summary>
    public string? Host { get; }

    /// <summary>TCP port (TCP transport only; 0 for unix).</summary>
    public int Port { get; }

    public static NbdUri Unix(string socketPath, string exportName = "")
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(exportName);
        return new NbdUri(NbdTransportKind.Unix, exportName, socketPath, null, 0);
    }

    public static NbdUri Tcp(string host, int port = NbdProtocol.DefaultPort, string exportName = "")
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentNullException.ThrowIfNull(exportName);
        return new NbdUri(NbdTransportKind.Tcp, exportName, null, host, port);
    }

    /// <summary>Parses an NBD URI; throws <see cref="NbdException"/> (command "URI") saying what is wrong.</summary>
    public static NbdUri Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var schemeEnd = uri.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            throw Invalid(uri, "expected nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH");
        }

        var scheme = uri[..schemeEnd].ToLowerInvariant();
        var rest = uri[(schemeEnd + 3)..];
        if (rest.Contains('#'))
        {
            rest = rest[..rest.IndexOf('#')];
        }

        var queryStart = rest.IndexOf('?');
        var query = queryStart >= 0 ? rest[(queryStart + 1)..] : "";
        if (queryStart >= 0)
        {
            rest = rest[..queryStart];
        }

        var pathStart = rest.IndexOf('/');
        var authority = pathStart >= 0 ? rest[..pathStart] : rest;
        var exportName = pathStart >= 0 ? Decode(uri, rest[(pathStart + 1)..]) : "";
        var parameters = ParseQuery(uri, query);

        switch (scheme)
        {
            case "nbd":
            case "nbd+tcp":
                return ParseTcp(uri, authority, exportName);
            case "nbd+unix":
                if (authority.Length != 0)
                {
                    throw Invalid(uri, "a nbd+unix URI has no host (use nbd+unix:///EXPORT?socket=PATH)");
                }

                if (!parameters.TryGetValue("socket", out var socket) || socket.Length == 0)
                {
                    throw Invalid(uri, "the socket=PATH query parameter is required for nbd+unix");
                }

                return Unix(socket, exportName);
            case "nbds":
            case "nbds+unix":
                throw Invalid(uri, "TLS (nbds) is not supported by this client");
            default:
                throw Invalid(uri, $"unsupported scheme '{scheme}' (expected nbd or nbd+unix)");
        }
    }

    private static NbdUri ParseTcp(string uri, string authority, string exportName)
    {
        if (authority.Contains('@'))
        {
            throw Invalid(uri, "user information is not supported");
        }

        string host;
        var portText = "";
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']');
            if (close < 0)
            {
                throw Invalid(uri, "unterminated IPv6 address");
            }

            host = authority[1..close];
            var after = authority[(close + 1)..];
            if (after.Length > 0 && after[0] != ':')
            {
                throw Invalid(uri, "unexpected text after the IPv6 address");
            }

            portText = after.Length > 0 ? after[1..] : "";
        }
        else
        {
            var colon = authority.LastIndexOf(':');
            host = colon >= 0 ? authority[..colon] : authority;
            portText = colon >= 0 ? authority[(colon + 1)..] : "";
        }

        if (host.Length == 0)
        {
            throw Invalid(uri, "the host is missing");
        }

        var port = NbdProtocol.DefaultPort;
        if (portText.Length > 0 &&
            (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            throw Invalid(uri, $"invalid port '{portText}'");
        }

        return Tcp(Decode(uri, host), port, exportName);
    }

    private static Dictionary<string, string> ParseQuery(string uri, string query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            var key = Decode(uri, eq >= 0 ? pair[..eq] : pair);
            result[key] = eq >= 0 ? Decode(uri, pair[(eq + 1)..]) : "";
        }

        return result;
    }

    private static string Decode(string uri, string text)
    {
        if (!text.Contains('%'))
        {
            return text;
        }

        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '%')
            {
                if (i + 2 >= text.Length ||
                    !byte.TryParse(text.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
                {
                    throw Invalid(uri, $"bad percent-encoding in '{text}'");
                }

                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static NbdException Invalid(string uri, string problem) =>
        new($"Invalid NBD URI '{uri}': {problem}.", "URI");

    /// <summary>The canonical URI text (round-trips through <see cref="Parse"/>).</summary>
    public override string ToString()
    {
        var export = Uri.EscapeDataString(ExportName);
        if (Transport == NbdTransportKind.Unix)
        {
            return $"nbd+unix:///{export}?socket={Uri.EscapeDataString(SocketPath!).Replace("%2F", "/", StringComparison.Ordinal)}";
        }

        var host = Host!.Contains(':') ? $"[{Host}]" : Host;
        var port = Port == NbdProtocol.DefaultPort ? "" : $":{Port}";
        return $"nbd://{host}{port}/{export}";
    }
}
