using System.Diagnostics;
using VirtBackup.Core.Hosts.Ssh;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Remote;

/// <summary>
/// A SIGKILLed remote run cannot stop its ssh master (ControlPersist=yes keeps it alive forever); the next session
/// stops the masters whose process is gone, through a fake ssh that records what it was asked.
/// </summary>
public sealed class SshOrphanSweepTests : IDisposable
{
    private readonly TempDir _temp = new();

    private string Root => _temp.Path;

    [Fact(Timeout = 60_000)]
    public async Task The_connection_of_a_process_that_is_gone_is_stopped_and_its_directory_removed_and_live_ones_stay()
    {
        var dead = await DeadProcessIdAsync();
        var orphan = MakeDirectory($"vbssh-{dead}-AbC123", withControl: true);
        var live = MakeDirectory($"vbssh-{Environment.ProcessId}-XyZ789", withControl: true);
        var oldStyle = MakeDirectory("vbssh-Qw3rty", withControl: true);
        var (ssh, calls) = FakeSsh();

        var removed = await SshSession.SweepOrphansAsync(ssh, Serilog.Core.Logger.None, Root, CancellationToken.None);

        Assert.Equal([orphan], removed);
        Assert.False(Directory.Exists(orphan));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(oldStyle));
        Assert.Equal($"-o ControlPath={orphan}/ctl -O exit -- stale\n", await File.ReadAllTextAsync(calls));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_directory_of_a_process_that_is_gone_without_a_control_socket_is_removed_without_calling_ssh()
    {
        var orphan = MakeDirectory($"vbssh-{await DeadProcessIdAsync()}-AbC123", withControl: false);
        var (ssh, calls) = FakeSsh();

        var removed = await SshSession.SweepOrphansAsync(ssh, Serilog.Core.Logger.None, Root, CancellationToken.None);

        Assert.Equal([orphan], removed);
        Assert.False(File.Exists(calls));
    }

    public void Dispose() => _temp.Dispose();

    private string MakeDirectory(string name, bool withControl)
    {
        var path = Directory.CreateDirectory(Path.Combine(Root, name)).FullName;
        if (withControl)
        {
            File.WriteAllText(Path.Combine(path, "ctl"), "");
        }

        return path;
    }

    private (string Ssh, string Calls) FakeSsh()
    {
        var calls = Path.Combine(Root, "calls");
        var ssh = Path.Combine(Root, "ssh");
        File.WriteAllText(ssh, $"#!/bin/sh\necho \"$*\" >> '{calls}'\n");
        File.SetUnixFileMode(ssh, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return (ssh, calls);
    }

    private static async Task<int> DeadProcessIdAsync()
    {
        using var process = Process.Start("true");
        await process.WaitForExitAsync();
        return process.Id;
    }
}
