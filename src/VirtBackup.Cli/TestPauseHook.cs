using System.Runtime.InteropServices;
using VirtBackup.Core.Capture;

namespace VirtBackup.CliApp;

/// <summary>
/// TEST ONLY (docs/RELIABILITY.md): <c>VIRTBACKUP_TEST_PAUSE_AT=PHASE</c> makes <c>backup</c> write
/// <c>reached PHASE</c> to stderr at that phase boundary and wait there until SIGCONT, until
/// <c>VIRTBACKUP_TEST_PAUSE_SECONDS</c> (default 60) pass, or until a signal cancels the run. It then returns and
/// the run carries on, so with a signal the code after the boundary must notice the cancellation on its own. The
/// fault tests use it to deliver SIGTERM, SIGKILL, a closed stdout or a libvirtd restart at an exact point.
/// </summary>
internal sealed class TestPauseHook : IDisposable
{
    public const string PhaseVariable = "VIRTBACKUP_TEST_PAUSE_AT";
    public const string SecondsVariable = "VIRTBACKUP_TEST_PAUSE_SECONDS";

    private readonly BackupPhase _phase;
    private readonly TimeSpan _timeout;
    private readonly TaskCompletionSource _continued = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PosixSignalRegistration _sigcont;

    private TestPauseHook(BackupPhase phase, TimeSpan timeout)
    {
        _phase = phase;
        _timeout = timeout;
        _sigcont = PosixSignalRegistration.Create(PosixSignal.SIGCONT, _ => _continued.TrySetResult());
    }

    /// <summary>The hook <c>VIRTBACKUP_TEST_PAUSE_AT</c> asks for, or null (always, outside tests).</summary>
    public static TestPauseHook? FromEnvironment(Func<string, string?> environment)
    {
        if (environment(PhaseVariable) is not { Length: > 0 } name)
        {
            return null;
        }

        var phase = BackupPhases.Parse(name)
            ?? throw new UsageException($"{PhaseVariable}='{name}' is not a phase: {string.Join(", ", BackupPhases.All.Select(BackupPhases.Name))}");
        return new TestPauseHook(phase, TimeSpan.FromSeconds(Seconds(environment)));
    }

    /// <summary>How long the hook waits at its phase: <c>VIRTBACKUP_TEST_PAUSE_SECONDS</c>, 60 when unset or not a positive number.</summary>
    public static int Seconds(Func<string, string?> environment) =>
        environment(SecondsVariable) is { Length: > 0 } text && int.TryParse(text, out var s) && s > 0 ? s : 60;

    /// <summary>What waiting at <paramref name="phase"/> holds up, for the warning that the hook is active.</summary>
    public static string Holds(BackupPhase? phase) => phase switch
    {
        BackupPhase.Freeze => "the guest's file-system freeze, if any",
        BackupPhase.Paused or BackupPhase.BackupBegin or BackupPhase.StateRead => "the VM paused",
        BackupPhase.Streaming or BackupPhase.Finishing => "the backup job and its scratch images",
        _ => "the domain's backup lock",
    };

    public PhaseHook Hook => ReachAsync;

    public void Dispose() => _sigcont.Dispose();

    private async Task ReachAsync(BackupPhase phase, CancellationToken cancellationToken)
    {
        if (phase != _phase)
        {
            return;
        }

        await Console.Error.WriteLineAsync($"reached {BackupPhases.Name(phase)}");
        await Console.Error.FlushAsync(CancellationToken.None);
        try
        {
            await _continued.Task.WaitAsync(_timeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            // Carry on either way: after a signal, the run itself must notice it.
        }
    }
}
