using VirtBackup.Core.Restore;

namespace VirtBackup.CliApp.Verbs;

/// <summary>What the verbs that read a stream share.</summary>
internal static class StreamInput
{
    /// <summary>stdin, unless it is a terminal: a stream is binary and comes from a file or the backup host.</summary>
    public static Stream Open(VerbContext context, string verb) => context.InputIsTerminal
        ? throw new RestoreRefusedException($"refusing to read a backup stream from a terminal: pipe it into 'virtbackup {verb}' (e.g. restic dump ... | virtbackup {verb})")
        : context.StandardInput;
}
