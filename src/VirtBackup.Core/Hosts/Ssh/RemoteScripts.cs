using System.Collections.Concurrent;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// The shell scripts the SSH host runs remotely (<c>sh -c SCRIPT virtbackup ARGS</c>, see <see cref="ShellQuote.ShScript"/>):
/// plain files in Hosts/Ssh/Scripts/ that shellcheck lints, compiled into the assembly as embedded resources (which
/// Native AOT keeps) and loaded by file name.
/// </summary>
internal static class RemoteScripts
{
    private const string Prefix = "VirtBackup.Core.Hosts.Ssh.Scripts.";
    private static readonly ConcurrentDictionary<string, string> Loaded = new(StringComparer.Ordinal);

    /// <summary>The text of Scripts/<paramref name="fileName"/>.</summary>
    public static string Load(string fileName) => Loaded.GetOrAdd(fileName, static name =>
    {
        using var stream = typeof(RemoteScripts).Assembly.GetManifestResourceStream(Prefix + name)
            ?? throw new InvalidOperationException($"the remote script {name} is not embedded in {typeof(RemoteScripts).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });
}
