namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>contrib/systemd: the example units are valid for systemd.</summary>
public sealed class SystemdUnitTests : IDisposable
{
    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Fact(Timeout = 30_000)]
    public async Task The_restic_service_and_timer_pass_systemd_analyze_verify_for_an_instance()
    {
        await HostTools.EnsureInstalledAsync();
        foreach (var unit in new[] { "virtbackup-restic@.service", "virtbackup-restic@.timer" })
        {
            // The units name the installed script; point them at this checkout's so verify can find it.
            var text = File.ReadAllText(HostTools.Contrib("systemd", unit)).Replace(
                "/usr/local/sbin/virtbackup-restic-backup", HostTools.Contrib("restic", "virtbackup-restic-backup"), StringComparison.Ordinal);
            File.WriteAllText(_work.Sub(unit), text);
            File.CreateSymbolicLink(_work.Sub(unit.Replace("@.", "@vm1.", StringComparison.Ordinal)), unit);
        }

        var verify = await HostTools.RunAsync(
            "systemd-analyze", ["verify", "--man=no", _work.Sub("virtbackup-restic@vm1.service"), _work.Sub("virtbackup-restic@vm1.timer")]);

        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Equal("", verify.StandardError);
    }
}
