using VirtBackup.Core.Hosts.Local;

namespace VirtBackup.Tests.Hosts;

/// <summary>
/// The durable note of what a backup made on the hypervisor host: written before, forgotten after, and what a killed
/// run left is removed through the host layer, never by a local file call of its own.
/// </summary>
public sealed class HostLeftoversTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("vbt-leftovers-state-").FullName;
    private readonly string _host = Directory.CreateTempSubdirectory("vbt-leftovers-host-").FullName;
    private readonly LocalHypervisorHost _local = new();

    [Fact]
    public void Noted_paths_are_one_host_and_path_line_each_and_the_note_goes_once_all_are_forgotten()
    {
        var leftovers = new HostLeftovers(_state);
        var job = Path.Combine(_host, "job");
        var scratch = Path.Combine(_host, "a.scratch");

        leftovers.Note(_local, [job]);
        leftovers.Note(_local, [scratch, job]);
        var noted = File.ReadAllText(leftovers.Path);
        leftovers.Forget(_local, [job]);
        var afterOne = File.ReadAllText(leftovers.Path);
        leftovers.Forget(_local, [scratch]);

        Assert.Equal($"this host\t{job}\nthis host\t{scratch}\n", noted);
        Assert.Equal($"this host\t{scratch}\n", afterOne);
        Assert.False(File.Exists(leftovers.Path));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_killed_runs_noted_directory_and_file_are_removed_through_the_host_and_another_hosts_paths_are_kept()
    {
        var job = Directory.CreateDirectory(Path.Combine(_host, "uuid-4242")).FullName;
        await File.WriteAllTextAsync(Path.Combine(job, "nbd.sock"), "x");
        var scratch = Path.Combine(_host, "virtbackup-uuid-vda.scratch");
        await File.WriteAllTextAsync(scratch, "x");
        var missing = Path.Combine(_host, "never-made");
        var killed = new HostLeftovers(_state);
        killed.Note(_local, [job, scratch, missing]);
        await File.AppendAllTextAsync(killed.Path, "root@elsewhere:22\t/run/virtbackup/uuid-abc\n");

        var removed = await new HostLeftovers(_state).RemoveAsync(_local, Serilog.Core.Logger.None);

        Assert.Equal([job, scratch, missing], removed);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_host));
        Assert.Equal("root@elsewhere:22\t/run/virtbackup/uuid-abc\n", File.ReadAllText(killed.Path));
    }

    [Fact]
    public void A_path_with_a_line_break_is_refused_before_anything_is_noted()
    {
        var leftovers = new HostLeftovers(_state);

        Assert.Throws<ArgumentException>(() => leftovers.Note(_local, [Path.Combine(_host, "a\nb")]));
        Assert.False(File.Exists(leftovers.Path));
    }

    public void Dispose()
    {
        Directory.Delete(_state, recursive: true);
        Directory.Delete(_host, recursive: true);
    }
}
