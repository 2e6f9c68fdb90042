using VirtBackup.Core.Capture;

namespace VirtBackup.CliApp;

/// <summary>
/// The TEST ONLY environment variables that change what a run does (docs/RELIABILITY.md). One left set by mistake
/// on a production host would, for instance, hold a VM paused: the backup says so in its log and in the manifest.
/// A new hook is added here, so that it is announced the same way.
/// </summary>
internal static class TestHooks
{
    /// <summary>Seconds after the resume at which the NVRAM and TPM state are read, instead of while paused: a broken capture order.</summary>
    public const string StateAfterResumeVariable = "VIRTBACKUP_TEST_STATE_AFTER_RESUME";

    /// <summary>The delay <see cref="StateAfterResumeVariable"/> asks for, or null (always, outside tests).</summary>
    public static TimeSpan? StateAfterResume(Func<string, string?> environment) =>
        environment(StateAfterResumeVariable) is { Length: > 0 } text
            ? double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds >= 0
                ? TimeSpan.FromSeconds(seconds)
                : throw new UsageException($"{StateAfterResumeVariable}='{text}' is not a number of seconds")
            : null;

    /// <summary>One sentence per active hook (its variable, its value and its effect); empty outside tests.</summary>
    public static IReadOnlyList<string> Active(Func<string, string?> environment)
    {
        var active = new List<string>();
        if (environment(TestPauseHook.PhaseVariable) is { Length: > 0 } name)
        {
            active.Add($"test hook {TestPauseHook.PhaseVariable}={name} is set (TEST ONLY): the backup waits at phase '{name}' for up to "
                + $"{TestPauseHook.Seconds(environment)} s, holding {TestPauseHook.Holds(BackupPhases.Parse(name))}; unset it outside tests");
        }

        if (StateAfterResume(environment) is { } delay)
        {
            active.Add($"test hook {StateAfterResumeVariable}={environment(StateAfterResumeVariable)} is set (TEST ONLY): the NVRAM and TPM state are read "
                + $"{delay.TotalSeconds} s after the VM was resumed, not while it was paused, so this backup is NOT of one instant; unset it outside tests");
        }

        return active;
    }
}
