namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// The real <c>virtbackup</c> (the apphost built next to the test assembly) as the host glue runs it: with a
/// config file in the test's directory that names the libvirt URI (<c>connect =</c>) and the chain state
/// directory (<c>state-dir =</c>), so neither needs an option a bpipe string could not carry, and nothing
/// lands in the host's /var/lib/virtbackup. Also makes <see cref="Interrupting"/>: the same program stopped
/// by a real SIGTERM halfway through its stream, for the failure paths of the glue.
/// </summary>
public sealed class HostVirtBackup
{
    /// <summary>How much of the stream <see cref="Interrupting"/> lets through before the signal.</summary>
    public const int InterruptAfterBytes = 1024 * 1024;

    public HostVirtBackup(string workDirectory)
    {
        StateDirectory = Path.Combine(workDirectory, "virtbackup-state");
        ConfigPath = Path.Combine(workDirectory, "virtbackup.conf");
        File.WriteAllText(ConfigPath, $"# written by the host tests\nconnect = qemu:///system\nstate-dir = {StateDirectory}\n");
        Interrupting = Path.Combine(workDirectory, "interrupted-virtbackup");
        File.WriteAllText(Interrupting, $$"""
            #!/usr/bin/env bash
            # The real virtbackup; a backup is interrupted by SIGTERM once {{InterruptAfterBytes}} bytes of its stream
            # went out (what a shutdown or an operator's kill does), the rest it wrote is passed on. Exits with its code.
            [[ ${1:-} == backup ]] || exec '{{Executable}}' "$@"
            fifo=$(mktemp -u) && mkfifo -m 0600 "$fifo" && trap 'rm -f "$fifo"' EXIT
            '{{Executable}}' "$@" > "$fifo" &
            pid=$!
            exec 3< "$fifo"
            dd bs=64K count={{InterruptAfterBytes / 65536}} iflag=fullblock status=none <&3
            kill -TERM "$pid"
            cat <&3
            wait "$pid"
            """.Replace("\r", "", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(Interrupting, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Executable { get; } = VirtBackupCli.ExecutablePath;

    /// <summary><see cref="Executable"/>, but a backup gets SIGTERM after <see cref="InterruptAfterBytes"/> of its stream.</summary>
    public string Interrupting { get; }

    public string ConfigPath { get; }

    public string StateDirectory { get; }

    /// <summary>Environment for the restic scripts: VIRTBACKUP and the config; nothing inherited that could redirect it.</summary>
    public IReadOnlyDictionary<string, string?> Environment(string? executable = null) => new Dictionary<string, string?>
    {
        ["VIRTBACKUP"] = executable ?? Executable,
        ["VIRTBACKUP_CONFIG"] = ConfigPath,
        ["VIRTBACKUP_CONNECT"] = null,
        ["LIBVIRT_DEFAULT_URI"] = null,
    };

    /// <summary>Options of the Bacula reader and writer scripts: the program and its config (no colon, no space).</summary>
    public IReadOnlyList<string> ClientOptions(string? executable = null) =>
        ["--virtbackup", executable ?? Executable, "--config", ConfigPath];

    /// <summary>virtbackup VERB ARGS... with this config, stdout as bytes.</summary>
    public Task<CliResult> RunAsync(string verb, IReadOnlyList<string> arguments, Stream? stdin = null) =>
        VirtBackupCli.RunAsync([verb, "--config", ConfigPath, .. arguments], stdin);
}
