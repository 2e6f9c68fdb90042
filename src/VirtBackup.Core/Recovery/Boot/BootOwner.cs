using System.Globalization;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// The process that makes a boot (<c>virtbackup boot</c> or <c>verify --boot</c>): its pid and its start time in clock
/// ticks since the host booted (<c>/proc/PID/stat</c> field 22), so a pid reused by another process is not taken for it.
/// </summary>
public sealed record BootOwner(int Pid, long StartTicks)
{
    public static BootOwner Current() => new(Environment.ProcessId, StartTicksOf(Environment.ProcessId) ?? 0);

    /// <summary>Whether the owner still runs (same pid, same start time, not a zombie).</summary>
    public bool IsAlive => Pid > 0 && ServeProcess.IsRunning(Pid) && StartTicksOf(Pid) == StartTicks;

    private static long? StartTicksOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // After "pid (comm) ": field 3 (state) is index 0, so field 22 (starttime) is index 19.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
