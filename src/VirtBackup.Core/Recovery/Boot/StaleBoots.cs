using System.Net.Sockets;
using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>A recorded boot that nothing will finish or use any more, and why.</summary>
public sealed record StaleBoot(BootRecord Record, string Reason);

/// <summary>
/// Finds and removes stale boots in <c>/run/virtbackup</c>: a boot still being made (<see cref="BootPhase.Booting"/>,
/// <see cref="BootPhase.Pulling"/>, <see cref="BootPhase.Restored"/>) whose owner process is gone (killed, SIGKILL
/// included), and a finished boot (<see cref="BootPhase.Booted"/>) whose server no longer accepts connections on its
/// socket (killed: its domain cannot read the backup any more). <c>virtbackup repair --boots</c> removes them all;
/// every <c>boot</c> and <c>verify --boot</c> first removes those whose domain does not run (a running or paused
/// domain is left to <c>repair</c> or <c>boot --stop</c>, a person may still look at it).
/// </summary>
public sealed class StaleBoots(LibvirtConnection libvirt, ILogger log, string runRoot = BootLayout.DefaultRunRoot)
{
    /// <summary>Boots are made by root only (so only root reads their records).</summary>
    public static bool RunsAsRoot => Platform.Posix.EffectiveUserId == 0;

    /// <summary>Every stale boot recorded under the run root.</summary>
    public IReadOnlyList<StaleBoot> Find()
    {
        if (!Directory.Exists(runRoot))
        {
            return [];
        }

        var stale = new List<StaleBoot>();
        foreach (var directory in Directory.EnumerateDirectories(runRoot, "boot-*").Order(StringComparer.Ordinal))
        {
            BootRecord? record;
            try
            {
                record = BootRecord.Load(directory);
            }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // Written by rename, so a torn record is not ours to judge: leave it and say so.
                log.Warning("cannot read the boot record in {Directory}: {Error}", directory, e.Message);
                continue;
            }

            if (record is not null && Reason(record) is { } reason)
            {
                stale.Add(new StaleBoot(record, reason));
            }
        }

        return stale;
    }

    /// <summary>Removes the stale boots (with <paramref name="includeRunning"/> also those whose domain runs or is paused; with <paramref name="only"/> that one); returns their names.</summary>
    public async Task<IReadOnlyList<string>> RemoveAsync(bool includeRunning, string? only = null)
    {
        var removed = new List<string>();
        foreach (var (record, reason) in Find().Where(s => only is null || s.Record.Name == only))
        {
            if (!includeRunning && record.Phase != BootPhase.Restored && DomainRuns(record))
            {
                log.Warning("boot {Name} is stale ({Reason}) but its domain runs: virtbackup repair --boots (or boot --stop {Name}) removes it", record.Name, reason, record.Name);
                continue;
            }

            log.Information("removing stale boot {Name}: {Reason}", record.Name, reason);
            await new BootCleanup(libvirt, log).RemoveAsync(record);
            removed.Add(record.Name);
        }

        return removed;
    }

    /// <summary>Why <paramref name="record"/> is stale, or null when it is not.</summary>
    public static string? Reason(BootRecord record) => record.Phase switch
    {
        BootPhase.Booted => ServerAnswers(record) ? null : $"its server (pid {record.ServePid}) is gone, so its domain cannot read the backup",
        _ => record.Owner.IsAlive ? null : $"the virtbackup process that made it (pid {record.Owner.Pid}) is gone while it was {Describe(record.Phase)}",
    };

    private static string Describe(BootPhase phase) => phase switch
    {
        BootPhase.Pulling => "pulling its data (live restore)",
        BootPhase.Restored => "stopping the server after a live restore",
        _ => "booting or checking it",
    };

    /// <summary>The recorded server, or one started again by hand on the same socket, accepts a connection.</summary>
    private static bool ServerAnswers(BootRecord record)
    {
        if (ServeProcess.IsServing(record.ServePid, record.SocketPath))
        {
            return true;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(record.SocketPath));
            return true;
        }
        catch (SocketException)
        {
            // Refused or no socket file: nobody serves it.
            return false;
        }
    }

    private bool DomainRuns(BootRecord record)
    {
        using var domain = libvirt.TryLookupByName(record.Name);
        return domain is not null && string.Equals(domain.Uuid, record.Uuid, StringComparison.OrdinalIgnoreCase) && domain.IsActive();
    }
}
