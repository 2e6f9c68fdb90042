using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace VirtBackup.Tests.Fakes;

/// <summary>A logger whose events are kept as "LEVEL message" lines, to assert what a run said.</summary>
internal sealed class LogLines : ILogEventSink
{
    private readonly List<string> _lines = [];

    public LogLines() => Logger = new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(this).CreateLogger();

    public ILogger Logger { get; }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>The lines at <paramref name="level"/> or above, without debug noise.</summary>
    public IReadOnlyList<string> AtLeast(LogEventLevel level) =>
        [.. Lines.Where(l => Enum.Parse<LogEventLevel>(l[..l.IndexOf(' ')]) >= level)];

    public void Emit(LogEvent logEvent)
    {
        lock (_lines)
        {
            _lines.Add($"{logEvent.Level} {logEvent.RenderMessage()}");
        }
    }
}
