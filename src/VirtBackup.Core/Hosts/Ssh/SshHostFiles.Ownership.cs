using System.Globalization;
using System.Text;
namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>Who owns the directories on the way to a path, on the remote host: one script for the whole path.</summary>
public sealed partial class SshHostFiles
{
    /// <summary>$@ = the directories, outermost first. "UID GID OCTAL-MODE" for each, up to the first that is not a directory.</summary>
    private static readonly string StatAncestorsScript = RemoteScripts.Load("stat-ancestors.sh");

    public async Task<IReadOnlyList<HostPathOwnership>> StatAncestorsAsync(string path, CancellationToken cancellationToken)
    {
        var directories = HostPathOwnership.Ancestors(path);
        var operation = $"look at the owners of the directories down to '{path}'";
        var output = await Session.RunAsync(ShellQuote.ShScript(StatAncestorsScript, directories), null, operation, cancellationToken);
        var lines = Encoding.ASCII.GetString(output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = new List<HostPathOwnership>();
        for (var i = 0; i < lines.Length; i++)
        {
            var fields = lines[i].Split(' ');
            if (i >= directories.Count || fields.Length != 3
                || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
                || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var gid)
                || fields[2].Length is 0 or > 4 || fields[2].Any(c => c is < '0' or > '7'))
            {
                throw new RemoteException(Session.Display, operation, 0, string.Empty, $"{operation} on {Session.Display}: unexpected answer '{lines[i]}'");
            }

            result.Add(new HostPathOwnership(directories[i], uid, gid, (UnixFileMode)Convert.ToInt32(fields[2], 8)));
        }

        return result;
    }
}
