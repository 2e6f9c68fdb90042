using VirtBackup.Core.Capture;

namespace VirtBackup.CliApp;

/// <summary>
/// The TEST ONLY environment variables that change what a run does (docs/RELIABILITY.md). One left set by mistake
/// on a production host would, for instance, hold a VM paused: the backup says so in its log and in the manifest.
/// A new hook is added here, so that it is announced the same way.
/// </summary>
internal static class TestHooks
{
    /// <summary>One sentence per active hook (its variable, its value and its effect); empty outside tests.</summary>
    public static IReadOnlyList<string> Active(Func<string, string?> environment)
    {
        var active = new List<string>();
        if (environment(TestPauseHook.PhaseVariable) is { Length: > 0 } name)
        {
            active.Add($"test hook {TestPauseHook.PhaseVariable}={name} is set (TEST ONLY): the backup waits at phase '{name}' for up to "
                + $"{TestPauseHook.Seconds(environment)} s, holding {TestPauseHook.Holds(BackupPhases.Parse(name))}; unset it outside tests");
        }

        return active;
    }
}
