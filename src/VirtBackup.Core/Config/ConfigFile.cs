namespace VirtBackup.Core.Config;

/// <summary>
/// The optional config file: <c>key = value</c> lines, <c>#</c> comments. It exists so that settings
/// holding a colon (a libvirt URI) can be given without one on the command line, which Bacula's bpipe
/// plugin splits at colons.
/// </summary>
public sealed class ConfigFile
{
    public const string DefaultPath = "/etc/virtbackup/virtbackup.conf";

    private readonly IReadOnlyDictionary<string, string> _values;

    private ConfigFile(IReadOnlyDictionary<string, string> values, string? path)
    {
        _values = values;
        Path = path;
    }

    public static ConfigFile Empty { get; } = new(new Dictionary<string, string>(), null);

    /// <summary>The file it was read from, or null when there was none.</summary>
    public string? Path { get; }

    public string? this[string key] => _values.GetValueOrDefault(key);

    /// <summary>Reads <paramref name="path"/>; a missing file at the default path is no error.</summary>
    public static ConfigFile Load(string path, bool mustExist)
    {
        if (!File.Exists(path))
        {
            return mustExist ? throw new ConfigException($"config file '{path}' does not exist") : Empty;
        }

        return Parse(File.ReadAllLines(path), path);
    }

    public static ConfigFile Parse(IEnumerable<string> lines, string? path)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ConfigException($"{path ?? "config"}:{number}: expected 'key = value', got '{line}'");
            }

            values[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }

        return new ConfigFile(values, path);
    }
}

/// <summary>The config file cannot be read or parsed.</summary>
public sealed class ConfigException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
