using System.Globalization;
using System.Text.RegularExpressions;
using Serilog;

namespace VirtBackup.Core.Hosts.Ssh;

/// <summary>
/// The master connections of killed runs. A master runs with ControlPersist=yes, so it outlives a process that was
/// SIGKILLed before <see cref="DisposeAsync"/> could stop it (a backup system's timeout does that). Each private
/// directory is named after the process that made it (<c>vbssh-PID-XXXXXX</c>); the next session of any run stops the
/// masters of directories whose process is gone and removes the directories.
/// </summary>
public sealed partial class SshSession
{
    /// <summary>
    /// Stops the master connection of every private directory below <paramref name="root"/> whose process is gone,
    /// and removes the directory. Directories of running processes, and ones this user cannot enter, stay.
    /// </summary>
    /// <returns>The directories removed.</returns>
    internal static async Task<IReadOnlyList<string>> SweepOrphansAsync(string sshExecutable, ILogger log, string root, CancellationToken cancellationToken)
    {
        var removed = new List<string>();
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(root, "vbssh-*").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return removed;
        }

        foreach (var directory in candidates)
        {
            var owner = OwnerPattern().Match(Path.GetFileName(directory));
            if (!owner.Success || !int.TryParse(owner.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}"))
            {
                continue;
            }

            var control = Path.Combine(directory, "ctl");
            try
            {
                if (File.Exists(control))
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(TimeSpan.FromSeconds(10));
                    await RunProcessAsync(
                        sshExecutable, "a stale connection", "ssh -O exit", ["-o", "ControlPath=" + control, "-O", "exit", "--", "stale"], null, timeout.Token);
                }

                Directory.Delete(directory, recursive: true);
                removed.Add(directory);
                log.Information("ssh: stopped the connection that process {Pid} left behind ({Directory}): it ended without closing it", pid, directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or RemoteException or OperationCanceledException)
            {
                log.Debug("ssh: cannot remove the stale connection directory {Directory}: {Error}", directory, e.Message);
            }
        }

        return removed;
    }

    /// <summary>Where the private directories live: TMPDIR unless ssh cannot use it.</summary>
    private static string PrivateRoot()
    {
        // ssh expands '%' in ControlPath and splits -o values at spaces: such a TMPDIR is not used.
        var root = Path.GetTempPath();
        return root.Length > 48 || root.Any(c => c is ' ' or '%' or '"' or '\'' or '\\') ? "/tmp/" : root;
    }

    [GeneratedRegex(@"^vbssh-(\d+)-[A-Za-z0-9]{6}$")]
    private static partial Regex OwnerPattern();
}
