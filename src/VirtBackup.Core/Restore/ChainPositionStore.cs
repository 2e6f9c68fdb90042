using System.Text.Json;
using System.Text.Json.Serialization;
using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Restore;

/// <summary>
/// Reads and writes <see cref="ChainPosition"/> files: <c>DIR/NAME.chain.json</c>, directory 0700, file 0600, written
/// to a temporary name, flushed and renamed, so a crash leaves either the old position or the new one. Next to it,
/// <c>NAME.xml</c> keeps the restored domain definition (for <c>virsh define</c> after a restore without <c>--define</c>),
/// and <c>NAME.committing</c> exists only while a verified stream is being put in place: if it is still there, that
/// commit was interrupted and the images may be between two states.
/// </summary>
public sealed class ChainPositionStore(string directory)
{
    public const string DirectoryName = ".virtbackup";

    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string Directory { get; } = directory;

    public string FilePath(string name) => Path.Combine(Directory, $"{name}.chain.json");

    public string DefinitionPath(string name) => Path.Combine(Directory, $"{name}.xml");

    public string MarkerPath(string name) => Path.Combine(Directory, $"{name}.committing");

    /// <summary>The stream (<see cref="ChainPosition.StreamIdOf"/>) whose commit was interrupted, or null.</summary>
    public string? LoadCommitMarker(string name) => File.Exists(MarkerPath(name)) ? File.ReadAllText(MarkerPath(name)).Trim() : null;

    /// <summary>Notes, durably, that <paramref name="streamId"/> is being committed for <paramref name="name"/>.</summary>
    public void MarkCommitting(string name, string streamId)
    {
        WriteAtomically(MarkerPath(name), System.Text.Encoding.UTF8.GetBytes(streamId + "\n"));
        Posix.FsyncDirectory(Directory);
    }

    public void ClearCommitMarker(string name) => File.Delete(MarkerPath(name));

    /// <summary>The position of <paramref name="name"/>, or null when nothing was restored under that name here.</summary>
    public ChainPosition? Load(string name)
    {
        var path = FilePath(name);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var position = JsonSerializer.Deserialize(File.ReadAllBytes(path), ChainPositionJson.Default.ChainPosition);
            if (position is null || position.FormatVersion != ChainPosition.CurrentFormatVersion)
            {
                throw new RestoreRefusedException($"the chain position '{path}' has an unknown format; restore the full backup again (with --force)");
            }

            return position;
        }
        catch (JsonException e)
        {
            throw new RestoreRefusedException($"the chain position '{path}' is unreadable ({e.Message}); restore the full backup again (with --force)", e);
        }
    }

    public void Save(ChainPosition position) =>
        WriteAtomically(FilePath(position.DomainName), JsonSerializer.SerializeToUtf8Bytes(position, ChainPositionJson.Default.ChainPosition));

    public void SaveDefinition(string name, string xml) => WriteAtomically(DefinitionPath(name), System.Text.Encoding.UTF8.GetBytes(xml));

    private void WriteAtomically(string path, byte[] content)
    {
        System.IO.Directory.CreateDirectory(Directory, PrivateDirectory);
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(ChainPosition))]
internal sealed partial class ChainPositionJson : JsonSerializerContext;
