using System.Runtime.InteropServices;
using Serilog;

namespace VirtBackup.CliApp;

/// <summary>
/// Turns SIGINT, SIGTERM, SIGHUP into cancellation so the verb unwinds through its cleanup (resume,
/// thaw, abort job, roll back checkpoint) and the process exits non-zero. SIGPIPE is ignored by the
/// .NET runtime, so a closed stdout surfaces as an IOException (EPIPE) on the next write.
/// </summary>
internal sealed class SignalHandling : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];

    public SignalHandling(CancellationTokenSource cancellation, ILogger log)
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                // Keep the process alive: the verb's finally blocks must run before we exit.
                context.Cancel = true;
                log.Warning("received {Signal}; cleaning up before exit", context.Signal);
                cancellation.Cancel();
            }));
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }
    }
}
