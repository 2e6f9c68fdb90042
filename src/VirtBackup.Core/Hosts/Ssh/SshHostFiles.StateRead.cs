using System.Diagnostics;
using System.Formats.Tar;
using System.Text;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// The state read of a capture over SSH. Every remote command starts the remote user's login shell, which
/// may read start-up files that take long (a <c>pyenv init</c> in root's ~/.bashrc costs 200 ms a command):
/// so the read is one command, started before the pause, that announces itself and then waits on its input.
/// Inside the pause only a "go" travels over the existing channel and one tar of the NVRAM file and the TPM
/// state tree comes back.
/// </summary>
public sealed partial class SshHostFiles
{
    /// <summary>$1 = file or empty, $2 = directory or empty. Ready at once; on "go", one pax tar: the file
    /// as "./NAME" first, then the directory's tree as "." and below (hard links as content, numeric owners).</summary>
    private static readonly string StateReadScript = RemoteScripts.Load("state-read.sh");

    public async Task<IPreparedStateRead> PrepareStateReadAsync(string? file, string? directory, CancellationToken cancellationToken)
    {
        var what = string.Join(" and ", new[] { file, directory }.Where(p => p is not null).Select(p => $"'{p}'"));
        var operation = $"read {what}";
        if (file is null && directory is null)
        {
            return new SshStateRead(this, null, null, null, operation);
        }

        var process = await RemoteProcess.StartAsync(
            Session,
            ShellQuote.ShScript(
                StateReadScript,
                file is null ? string.Empty : HostPaths.Absolute(file, nameof(file)),
                directory is null ? string.Empty : HostPaths.Absolute(directory, nameof(directory))),
            operation,
            cancellationToken);
        await WarmUpAsync(cancellationToken);
        return new SshStateRead(this, process, file, directory, operation);
    }

    /// <summary>
    /// Parses a small tar of the same shape as the state read's, so that the code that parses the real one
    /// inside the pause is compiled already (the first run of the tar reader costs 10 ms).
    /// </summary>
    private static async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        await using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, type) in new[] { ("./VARS.fd", TarEntryType.RegularFile), ("./", TarEntryType.Directory), ("./a/b", TarEntryType.RegularFile) })
            {
                var entry = new PaxTarEntry(type, name);
                if (type == TarEntryType.RegularFile)
                {
                    entry.DataStream = new MemoryStream(new byte[1024]);
                }

                await writer.WriteEntryAsync(entry, cancellationToken);
            }
        }

        await ParseStateAsync(buffer.ToArray(), "/warm/up/VARS.fd", cancellationToken);
    }

    /// <summary>The file (first entry, "./NAME") and the tree (the rest) of the state read's tar.</summary>
    internal static async Task<(byte[]? File, IReadOnlyList<HostFile> Tree)> ParseStateAsync(
        byte[] tar, string? file, CancellationToken cancellationToken)
    {
        await using var reader = new TarReader(new MemoryStream(tar, writable: false));
        byte[]? content = null;
        if (file is not null)
        {
            var entry = await NextEntryAsync(reader, cancellationToken)
                ?? throw new InvalidDataException("the tar stream is empty");
            var expected = "./" + file[(file.LastIndexOf('/') + 1)..];
            if (entry.Name != expected || entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
            {
                throw new InvalidDataException($"'{file}' is not a regular file (the tar stream has a {entry.EntryType} '{entry.Name}')");
            }

            content = new byte[entry.Length];
            if (entry.DataStream is { } data)
            {
                await data.ReadExactlyAsync(content, cancellationToken);
            }
        }

        return (content, await ParseTreeAsync(reader, cancellationToken));
    }

    private sealed class SshStateRead(SshHostFiles files, RemoteProcess? process, string? file, string? directory, string operation)
        : IPreparedStateRead
    {
        private (int Bytes, int Files, TimeSpan Took)? _done;

        public async Task<(byte[]? File, IReadOnlyList<HostFile> Tree)> ReadAsync(CancellationToken cancellationToken)
        {
            if (process is null)
            {
                return (null, []);
            }

            var started = Stopwatch.GetTimestamp();
            process.Send("go\n"u8);
            var tar = await process.CompleteAsync(cancellationToken);
            (byte[]? File, IReadOnlyList<HostFile> Tree) state;
            try
            {
                state = await ParseStateAsync(tar, file, cancellationToken);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
            {
                var host = files.Session.Display;
                throw new RemoteException(host, operation, 0, string.Empty, $"{operation} on {host}: {e.Message}", e);
            }

            _done = (tar.Length, state.Tree.Count + (state.File is null ? 0 : 1), Stopwatch.GetElapsedTime(started));
            return state;
        }

        /// <summary>Ends an unread command; logs a completed read (after the pause: logging costs nothing there).</summary>
        public async ValueTask DisposeAsync()
        {
            if (process is not null)
            {
                await process.DisposeAsync();
            }

            if (_done is { } read)
            {
                files.Log.Information(
                    "read {What} on {Host} over SSH: {Files} files, {Bytes} bytes of tar in one remote command, {Milliseconds:F1} ms",
                    string.Join(" and ", new[] { file, directory }.Where(p => p is not null)),
                    files.Session.Display,
                    read.Files,
                    read.Bytes,
                    read.Took.TotalMilliseconds);
            }
        }
    }
}
