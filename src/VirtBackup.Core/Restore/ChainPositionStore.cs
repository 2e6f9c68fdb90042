using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VirtBackup.Core.Capture;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;

namespace VirtBackup.Core.Restore;

/// <summary>
/// Reads and writes <see cref="ChainPosition"/> files: <c>DIR/NAME.chain.json</c>, directory 0700, file 0600, written
/// to a temporary name, flushed and renamed, so a crash leaves either the old position or the new one. Next to it,
/// <c>NAME.xml</c> keeps the restored domain definition (for <c>virsh define</c> after a restore without <c>--define</c>),
/// and <c>NAME.committing</c> exists only while a verified stream is being put in place: if it is still there, that
/// commit was interrupted and the images may be between two states. The files live on the restored host,
/// next to the images: read and written through its <see cref="IHostFiles"/>.
/// </summary>
public sealed class ChainPositionStore(IHostFiles files, string directory)
{
    public const string DirectoryName = ".virtbackup";

    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The directory was created (or found) by this instance: a remote command saved per write.</summary>
    private bool _directoryReady;

    /// <summary>A store on this machine.</summary>
    public ChainPositionStore(string directory)
        : this(new LocalHostFiles(), directory)
    {
    }

    public string Directory { get; } = directory;

    public string FilePath(string name) => Path.Combine(Directory, $"{name}.chain.json");

    public string DefinitionPath(string name) => Path.Combine(Directory, $"{name}.xml");

    public string MarkerPath(string name) => Path.Combine(Directory, $"{name}.committing");

    /// <summary>The stream (<see cref="ChainPosition.StreamIdOf"/>) whose commit was interrupted, or null.</summary>
    public async Task<string?> LoadCommitMarkerAsync(string name, CancellationToken cancellationToken) =>
        await ReadIfPresentAsync(MarkerPath(name), cancellationToken) is { } content ? Encoding.UTF8.GetString(content).Trim() : null;

    /// <summary>Notes, durably, that <paramref name="streamId"/> is being committed for <paramref name="name"/>.</summary>
    public async Task MarkCommittingAsync(string name, string streamId, CancellationToken cancellationToken)
    {
        await WriteAtomicallyAsync(MarkerPath(name), Encoding.UTF8.GetBytes(streamId + "\n"), cancellationToken);
        await files.SyncAsync(Directory, cancellationToken);
    }

    public Task ClearCommitMarkerAsync(string name, CancellationToken cancellationToken) => files.DeleteTreeAsync(MarkerPath(name), cancellationToken);

    /// <summary>The position of <paramref name="name"/>, or null when nothing was restored under that name here.</summary>
    public async Task<ChainPosition?> LoadAsync(string name, CancellationToken cancellationToken)
    {
        var path = FilePath(name);
        if (await ReadIfPresentAsync(path, cancellationToken) is not { } content)
        {
            return null;
        }

        try
        {
            var position = JsonSerializer.Deserialize(content, ChainPositionJson.Default.ChainPosition);
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

    public Task SaveAsync(ChainPosition position, CancellationToken cancellationToken) =>
        WriteAtomicallyAsync(FilePath(position.DomainName), JsonSerializer.SerializeToUtf8Bytes(position, ChainPositionJson.Default.ChainPosition), cancellationToken);

    public Task SaveDefinitionAsync(string name, string xml, CancellationToken cancellationToken) =>
        WriteAtomicallyAsync(DefinitionPath(name), Encoding.UTF8.GetBytes(xml), cancellationToken);

    public Task SyncAsync(CancellationToken cancellationToken) => files.SyncAsync(Directory, cancellationToken);

    private async Task<byte[]?> ReadIfPresentAsync(string path, CancellationToken cancellationToken) =>
        await files.StatAsync(path, cancellationToken) is { IsDirectory: false } ? await files.ReadFileAsync(path, cancellationToken) : null;

    /// <summary>A 0600 file next to the target, flushed, renamed over it: a crash leaves the old content or the new.</summary>
    private async Task WriteAtomicallyAsync(string path, byte[] content, CancellationToken cancellationToken)
    {
        if (!_directoryReady)
        {
            await files.CreateDirectoryAsync(Directory, PrivateDirectory, cancellationToken);
            _directoryReady = true;
        }

        await files.WriteFileAsync(path, content, PrivateFile, null, null, cancellationToken);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(ChainPosition))]
internal sealed partial class ChainPositionJson : JsonSerializerContext;
