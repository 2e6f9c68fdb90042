using System.Text.Json;
using System.Text.Json.Serialization;

namespace VirtBackup.Core.Chain;

/// <summary>
/// Reads and writes <see cref="ChainState"/> as <c>STATE_DIR/UUID/chain.json</c>; directories 0700,
/// files 0600, written to a temporary name and renamed so a crash never leaves half a file.
/// </summary>
public sealed class ChainStore(string stateDirectory)
{
    public const string DefaultDirectory = "/var/lib/virtbackup";

    public string StateDirectory { get; } = stateDirectory;

    public string DomainDirectory(string uuid) => Path.Combine(StateDirectory, uuid);

    public ChainState? Load(string uuid)
    {
        var path = FilePath(uuid);
        if (!File.Exists(path))
        {
            return null;
        }

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

    public void Save(ChainState state)
    {
        var directory = EnsureDirectory(state.DomainUuid);
        var path = FilePath(state.DomainUuid);
        var temporary = Path.Combine(directory, $".chain.json.{Environment.ProcessId}.tmp");
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

    private string FilePath(string uuid) => Path.Combine(DomainDirectory(uuid), "chain.json");
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ChainState))]
internal sealed partial class ChainJson : JsonSerializerContext;

/// <summary>The chain state file exists but cannot be used.</summary>
public sealed class ChainStateException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
