using System.Collections.Concurrent;
using System.Diagnostics;

namespace VirtBackup.IntegrationTests.Restore;

/// <summary>
/// A domain a test restores (a <c>vbt-</c> name): disposing removes it like a lab VM (domain.sh remove: destroy,
/// undefine with NVRAM and TPM state, images, swtpm log) plus its chain position and saved definition.
/// </summary>
public sealed class RestoredLabDomain : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<string, byte> Live = new();
    private int _disposed;

    static RestoredLabDomain() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var name in Live.Keys)
        {
            using var remove = Process.Start("bash", [LabHost.Script("domain.sh"), "remove", name]);
            remove.WaitForExit(TimeSpan.FromSeconds(30));
            DeleteChainFiles(name);
        }
    };

    public RestoredLabDomain(string name)
    {
        Name = name;
        Live[name] = 0;
    }

    public string Name { get; }

    public string DiskPath(string target) => $"{LabVm.ImagesDirectory}/{Name}-{target}.qcow2";

    public string NvramPath => $"/var/lib/libvirt/qemu/nvram/{Name}_VARS.fd";

    public string ChainPositionPath => $"{LabVm.ImagesDirectory}/.virtbackup/{Name}.chain.json";

    public string SwtpmLogPath => $"/var/log/swtpm/libvirt/qemu/{Name}-swtpm.log";

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await LabHost.RunScriptAsync("domain.sh", ["remove", Name], CancellationToken.None);
            DeleteChainFiles(Name);
            Live.TryRemove(Name, out _);
        }
    }

    private static void DeleteChainFiles(string name)
    {
        File.Delete($"{LabVm.ImagesDirectory}/.virtbackup/{name}.chain.json");
        File.Delete($"{LabVm.ImagesDirectory}/.virtbackup/{name}.xml");
    }
}
