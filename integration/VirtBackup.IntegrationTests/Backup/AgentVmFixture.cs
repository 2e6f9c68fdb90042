using System.Diagnostics;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// One guest-agent VM (integration/lab/domain.sh create --agent: Linux with qemu-guest-agent, vda a 64 MiB ext4 at
/// /mnt) shared by a test class, since booting it costs seconds; removed when the class is done.
/// </summary>
public sealed class AgentVmFixture : IAsyncLifetime
{
    private LabVm? _vm;

    public LabVm Vm => _vm ?? throw new InvalidOperationException("the agent VM is not created yet");

    /// <summary>From `domain.sh create` to the agent's first answer to guest-ping (including defining the domain).</summary>
    public TimeSpan CreatedIn { get; private set; }

    public async Task InitializeAsync()
    {
        var watch = Stopwatch.StartNew();
        _vm = await LabVm.CreateAsync(diskSize: "64M", agent: true);
        CreatedIn = watch.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (_vm is not null)
        {
            await _vm.DisposeAsync();
        }
    }
}
