using VirtBackup.Core.Restore;
using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

/// <summary>What the verbs that read a stream share.</summary>
internal static class StreamInput
{
    /// <summary>
    /// stdin may hold more after the stream (<c>{ virtbackup verify; virtbackup verify; } &lt; two.tar</c>): a verb
    /// reads its stream up to the end-of-archive blocks and leaves the rest, on a regular file with the shared
    /// offset right after its stream (<see cref="ReaderOptions.StopAtEndOfArchive"/>).
    /// </summary>
    public const bool StopAtEndOfArchive = true;

    /// <summary>stdin, unless it is a terminal: a stream is binary and comes from a file or the backup host.</summary>
    public static Stream Open(VerbContext context, string verb) => context.InputIsTerminal
        ? throw new RestoreRefusedException($"refusing to read a backup stream from a terminal: pipe it into 'virtbackup {verb}' (e.g. restic dump ... | virtbackup {verb})")
        : context.StandardInput;
}
