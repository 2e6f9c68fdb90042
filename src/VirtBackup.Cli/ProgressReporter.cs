using System.Diagnostics;
using Serilog;
using VirtBackup.Core.Backup;

namespace VirtBackup.CliApp;

/// <summary>
/// Turns backup progress into a live line on a terminal's stderr, or a log line every 10 s when stderr
/// is a file or pipe (cron, Bacula, restic). Never writes to stdout.
/// </summary>
internal sealed class ProgressReporter(ILogger log, bool terminal) : IProgress<BackupProgress>, IDisposable
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan TerminalInterval = TimeSpan.FromMilliseconds(250);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _last = TimeSpan.Zero;
    private bool _drewLine;

    public void Report(BackupProgress value)
    {
        var now = _clock.Elapsed;
        if (now - _last < (terminal ? TerminalInterval : LogInterval) && value.BytesDone < value.BytesTotal)
        {
            return;
        }

        _last = now;
        var rate = value.BytesDone / Math.Max(now.TotalSeconds, 0.001);
        var eta = rate > 0 ? TimeSpan.FromSeconds((value.BytesTotal - value.BytesDone) / rate) : TimeSpan.Zero;
        var text = $"{value.BytesDone / 1048576.0:F0}/{value.BytesTotal / 1048576.0:F0} MiB, {rate / 1048576.0:F0} MiB/s, ETA {eta:hh\\:mm\\:ss}";
        if (terminal)
        {
            Console.Error.Write($"\r{text}   ");
            _drewLine = true;
        }
        else
        {
            log.Information("streamed {Progress}", text);
        }
    }

    public void Dispose()
    {
        if (_drewLine)
        {
            Console.Error.WriteLine();
        }
    }
}
