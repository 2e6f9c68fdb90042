using System.Text.Json;
using System.Text.Json.Serialization;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Reads and writes the <see cref="ChainState"/> of one of a domain's chains: the unnamed chain's as
/// <c>STATE_DIR/UUID/chain.json</c> (as always), chain NAME's as <c>STATE_DIR/UUID/chain-NAME.json</c>; directories 0700,
/// files 0600, written to a temporary name and renamed so a crash never leaves half a file. <see cref="LoadOthers"/>
/// reads the domain's other chains, whose checkpoints a run of this one must leave alone.
/// </summary>
/// <param name="chain">The chain (<see cref="ChainName"/>); null for the unnamed one.</param>
public sealed class ChainStore(string stateDirectory, string? chain = null)
{
    public const string DefaultDirectory = "/var/lib/virtbackup";

    private const string UnnamedFile = "chain.json";
    private const string NamedPrefix = "chain-";

    public string StateDirectory { get; } = stateDirectory;

    /// <summary>The chain this store reads and writes; null for the unnamed one.</summary>
    public string? Chain { get; } = chain is null || ChainName.IsValid(chain)
        ? chain
        : throw new ArgumentException(ChainName.Problem(chain), nameof(chain));

    public string DomainDirectory(string uuid) => Path.Combine(StateDirectory, uuid);

    public ChainState? Load(string uuid)
    {
        var path = FilePath(uuid);
        if (!File.Exists(path))
        {
            return null;
        }

        return Read(path);
    }

    /// <summary>
    /// The domain's other chains (named ones and the unnamed one, except this store's), each with its state, or with
    /// null when the file is unreadable.
    /// </summary>
    public IReadOnlyList<(string? Chain, ChainState? State)> LoadOthers(string uuid)
    {
        var directory = DomainDirectory(uuid);
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var others = new List<(string?, ChainState?)>();
        foreach (var path in Directory.EnumerateFiles(directory, "chain*.json").Order(StringComparer.Ordinal))
        {
            var other = ChainOfFile(Path.GetFileName(path));
            if (other is { Named: true, Chain: var name } && name != Chain)
            {
                others.Add((name, TryRead(path)));
            }
        }

        return others;
    }

    public void Save(ChainState state)
    {
        if (state.Chain != Chain)
        {
            throw new InvalidOperationException($"the state of {ChainName.Describe(state.Chain)} saved as {ChainName.Describe(Chain)}'s");
        }

        var directory = EnsureDirectory(state.DomainUuid);
        var path = FilePath(state.DomainUuid);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, state, ChainJson.Default.ChainState);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    public void Delete(string uuid)
    {
        var path = FilePath(uuid);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    public string EnsureDirectory(string uuid)
    {
        var directory = DomainDirectory(uuid);
        Directory.CreateDirectory(StateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return directory;
    }

    private string FilePath(string uuid) =>
        Path.Combine(DomainDirectory(uuid), Chain is null ? UnnamedFile : $"{NamedPrefix}{Chain}.json");

    /// <summary>Whether a file name is a chain's state file, and whose: (true, null) is the unnamed chain's.</summary>
    private static (bool Named, string? Chain) ChainOfFile(string fileName)
    {
        if (fileName == UnnamedFile)
        {
            return (true, null);
        }

        var name = fileName.StartsWith(NamedPrefix, StringComparison.Ordinal) && fileName.EndsWith(".json", StringComparison.Ordinal)
            ? fileName[NamedPrefix.Length..^".json".Length]
            : null;
        return ChainName.IsValid(name) ? (true, name) : (false, null);
    }

    private static ChainState? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), ChainJson.Default.ChainState);
        }
        catch (JsonException e)
        {
            // A damaged state file only costs an incremental: the caller falls back to a full backup.
            throw new ChainStateException($"chain state '{path}' is unreadable ({e.Message}); remove it to start a new chain with a full backup", e);
        }
    }

    private static ChainState? TryRead(string path)
    {
        try
        {
            return Read(path);
        }
        catch (Exception e) when (e is ChainStateException or IOException)
        {
            // Another chain's state: this run cannot use it, and must not decide on it (its checkpoints are left alone).
            return null;
        }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ChainState))]
internal sealed partial class ChainJson : JsonSerializerContext;

/// <summary>The chain state file exists but cannot be used.</summary>
public sealed class ChainStateException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
