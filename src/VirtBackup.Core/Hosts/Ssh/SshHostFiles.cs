using System.Formats.Tar;
using System.Text;
using Serilog;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// <see cref="IHostFiles"/> on a remote hypervisor, through an <see cref="SshSession"/>'s master
/// connection. Every operation is one remote <c>/bin/sh</c> script whose paths travel as single-quoted
/// positional parameters (no file name reaches the shell as code); trees travel as one tar stream.
/// Needs on the remote host: a POSIX sh, GNU coreutils, GNU find and GNU tar (every libvirt host has them).
/// </summary>
public sealed partial class SshHostFiles(SshSession session, ILogger? log = null) : IHostFiles
{
    /// <summary>Exit code of the scripts for "there is nothing at that path".</summary>
    private const int Missing = 3;

    /// <summary>$1 = path. Prints (NUL-terminated) what the remote user cannot read or enter; exit 3 when
    /// nothing is there; otherwise find's own exit code (non-zero when it could not look somewhere).</summary>
    private static readonly string CheckScript = RemoteScripts.Load("check.sh");

    /// <summary>$1 = path. The bytes of one regular file (a symlink to one is followed).</summary>
    private static readonly string ReadFileScript = RemoteScripts.Load("read-file.sh");

    /// <summary>$1 = directory. Refuses anything but regular files and directories below it, then sends
    /// the tree as a pax tar (hard links as content, numeric owners).</summary>
    private static readonly string ReadTreeScript = RemoteScripts.Load("read-tree.sh");

    /// <summary>$1 parent, $2 name, $3 owner, $4 group (both empty: unchanged), $5 mode, $6 size; content on stdin. A 0600 file
    /// (umask 077) next to the target, checked, synced, given owner and mode, renamed over the target.</summary>
    private static readonly string WriteFileScript = RemoteScripts.Load("write-file.sh");

    /// <summary>$1 parent, $2 name, $3 owner, $4 group (both empty: unchanged), $5 file mode, $6 directory mode, $7 file count; a
    /// tar of 0600 files and 0700 directories on stdin. Extracted (umask 077, our ownership) into a 0700
    /// directory next to the target, checked, synced, given owner and modes, renamed into place; an
    /// existing target is moved into a 0700 directory first and removed last.</summary>
    private static readonly string WriteTreeScript = RemoteScripts.Load("write-tree.sh");

    private static readonly string ExistsScript = RemoteScripts.Load("exists.sh");

    private static readonly string DeleteScript = RemoteScripts.Load("delete.sh");

    public SshSession Session { get; } = session ?? throw new ArgumentNullException(nameof(session));

    internal ILogger Log { get; } = log ?? Serilog.Core.Logger.None;

    public async Task CheckReadableAsync(string path, string whatItIs, string advice, CancellationToken cancellationToken)
    {
        HostPaths.Absolute(path, nameof(path));
        var result = await Session.ExecuteAsync(ShellQuote.ShScript(CheckScript, path), null, $"check that '{path}' is readable", cancellationToken);
        var unreadable = Encoding.UTF8.GetString(result.StandardOutput)
            .Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (result.ExitCode == Missing)
        {
            throw new PreflightException($"cannot read the {whatItIs} '{path}' on {Session.Display}: it does not exist. {advice}");
        }

        if (unreadable.Length > 0)
        {
            var shown = string.Join(", ", unreadable.Take(5).Select(p => $"'{p}'"));
            var more = unreadable.Length > 5 ? $" and {unreadable.Length - 5} more" : string.Empty;
            throw new PreflightException(
                $"cannot read the {whatItIs} '{path}' on {Session.Display}: the remote user {Session.RemoteUser} cannot read {shown}{more}. {advice}");
        }

        if (result.ExitCode != 0)
        {
            throw RemoteException.CommandFailed(Session.Display, $"check that '{path}' is readable", result.ExitCode, result.StandardError);
        }
    }

    public Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken) =>
        Session.RunAsync(
            ShellQuote.ShScript(ReadFileScript, HostPaths.Absolute(path, nameof(path))),
            null,
            $"read the file '{path}'",
            cancellationToken);

    public async Task<IReadOnlyList<HostFile>> ReadTreeAsync(string directory, CancellationToken cancellationToken)
    {
        var operation = $"read the directory '{directory}'";
        var tar = await Session.RunAsync(
            ShellQuote.ShScript(ReadTreeScript, HostPaths.Absolute(directory, nameof(directory))), null, operation, cancellationToken);
        try
        {
            return await ParseTreeAsync(tar, cancellationToken);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new RemoteException(Session.Display, operation, 0, string.Empty, $"{operation} on {Session.Display}: {e.Message}", e);
        }
    }

    public async Task WriteFileAsync(
        string path, ReadOnlyMemory<byte> content, UnixFileMode mode, string? owner, string? group, CancellationToken cancellationToken)
    {
        var script = WriteScript(WriteFileScript, path, nameof(path), owner, group, HostPaths.Octal(mode, nameof(mode)), HostPaths.Decimal(content.Length));
        await Session.RunAsync(script, content, $"write the file '{path}'", cancellationToken);
    }

    public async Task WriteTreeAsync(
        string directory, IReadOnlyList<HostFile> files, UnixFileMode fileMode, UnixFileMode directoryMode, string? owner, string? group, CancellationToken cancellationToken)
    {
        var (directories, ordered) = HostPaths.Layout(files);
        var script = WriteScript(
            WriteTreeScript,
            directory,
            nameof(directory),
            owner,
            group,
            HostPaths.Octal(fileMode, nameof(fileMode)),
            HostPaths.Octal(directoryMode, nameof(directoryMode)),
            HostPaths.Decimal(ordered.Count));
        var tar = await BuildTreeAsync(directories, ordered, cancellationToken);
        await Session.RunAsync(script, tar, $"write the directory '{directory}'", cancellationToken);
    }

    public async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken)
    {
        var output = await Session.RunAsync(
            ShellQuote.ShScript(ExistsScript, HostPaths.Absolute(path, nameof(path))), null, $"look for '{path}'", cancellationToken);
        return Encoding.ASCII.GetString(output).Trim() switch
        {
            "yes" => true,
            "no" => false,
            var other => throw new RemoteException(
                Session.Display, $"look for '{path}'", 0, string.Empty, $"look for '{path}' on {Session.Display}: unexpected answer '{other}'"),
        };
    }

    public async Task DeleteTreeAsync(string path, CancellationToken cancellationToken) =>
        await Session.RunAsync(
            ShellQuote.ShScript(DeleteScript, HostPaths.Absolute(path, nameof(path))), null, $"delete '{path}'", cancellationToken);

    /// <summary>The regular files of a tar from <see cref="ReadTreeScript"/>; anything else is refused.</summary>
    internal static async Task<IReadOnlyList<HostFile>> ParseTreeAsync(byte[] tar, CancellationToken cancellationToken)
    {
        await using var reader = new TarReader(new MemoryStream(tar, writable: false));
        return await ParseTreeAsync(reader, cancellationToken);
    }

    /// <summary>The regular files of the rest of <paramref name="reader"/>'s tar; anything else is refused.</summary>
    internal static async Task<IReadOnlyList<HostFile>> ParseTreeAsync(TarReader reader, CancellationToken cancellationToken)
    {
        var files = new List<HostFile>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (await NextEntryAsync(reader, cancellationToken) is { } entry)
        {
            var relative = Relative(entry.Name);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    continue;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    if (relative.Length == 0 || !names.Add(relative))
                    {
                        throw new InvalidDataException($"the tar stream names the file '{entry.Name}' twice or without a name");
                    }

                    var content = new byte[entry.Length];
                    if (entry.DataStream is { } data)
                    {
                        await data.ReadExactlyAsync(content, cancellationToken);
                    }
                    else if (entry.Length != 0)
                    {
                        throw new InvalidDataException($"the tar stream has no data for '{entry.Name}'");
                    }

                    files.Add(new HostFile(relative, content, entry.Mode));
                    break;
                default:
                    throw new InvalidDataException($"'{entry.Name}' is a {entry.EntryType}, not a regular file or directory");
            }
        }

        return [.. files.OrderBy(f => f.RelativePath, StringComparer.Ordinal)];
    }

    /// <summary>The next entry that is not a pax global header, or null at the end.</summary>
    internal static async Task<TarEntry?> NextEntryAsync(TarReader reader, CancellationToken cancellationToken)
    {
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (entry is not PaxGlobalExtendedAttributesTarEntry)
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>
    /// A call of a write script: $1 the parent of <paramref name="path"/>, $2 its name, $3 owner, $4 group (names or numeric
    /// ids; both empty: unchanged), then <paramref name="more"/>.
    /// </summary>
    private static string WriteScript(string script, string path, string pathName, string? owner, string? group, params string[] more)
    {
        var (parent, name) = HostPaths.Split(path, pathName);
        if ((owner is null) != (group is null))
        {
            throw new ArgumentException("give both an owner and a group, or neither", nameof(group));
        }

        var accounts = new[] { owner is null ? string.Empty : HostPaths.Account(owner, nameof(owner)), group is null ? string.Empty : HostPaths.Account(group, nameof(group)) };
        return ShellQuote.ShScript(script, [parent, name, .. accounts, .. more]);
    }

    /// <summary>"./a/b" (or "a/b", "./a/") as "a/b"; "." and "./" as ""; refuses anything that could leave the tree.</summary>
    private static string Relative(string name)
    {
        var trimmed = name.TrimEnd('/');
        if (trimmed is "." or "")
        {
            return string.Empty;
        }

        if (trimmed.StartsWith("./", StringComparison.Ordinal))
        {
            trimmed = trimmed[2..];
        }

        if (trimmed.StartsWith('/') || trimmed.Contains('\0') || trimmed.Split('/').Any(s => s is "" or "." or ".."))
        {
            throw new InvalidDataException($"the tar stream has the unexpected member name '{name}'");
        }

        return trimmed;
    }

    /// <summary>A pax tar of the tree: directories 0700, files 0600 (the remote side sets the real modes).</summary>
    private static async Task<byte[]> BuildTreeAsync(IReadOnlyList<string> directories, IReadOnlyList<HostFile> files, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        await using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var directory in directories)
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, directory + "/") { Mode = HostPaths.PrivateDirectory }, cancellationToken);
            }

            foreach (var file in files)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, file.RelativePath)
                {
                    Mode = HostPaths.PrivateFile,
                    DataStream = new MemoryStream(file.Content, writable: false),
                };
                await writer.WriteEntryAsync(entry, cancellationToken);
            }
        }

        return buffer.ToArray();
    }
}
