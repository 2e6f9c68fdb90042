using Serilog;

namespace VirtBackup.IntegrationTests.Backup;

/// <summary>Runs backups of a lab VM, through the CLI or in process, with a private state directory.</summary>
internal sealed class BackupFixture : IDisposable
{
    public BackupFixture(LabVm vm)
    {
        Vm = vm;
        StateDirectory = Directory.CreateTempSubdirectory("vbt-state-").FullName;
    }

    public LabVm Vm { get; }

    public string StateDirectory { get; }

    /// <summary>`virtbackup backup --domain VM --level LEVEL ...` with stdout captured.</summary>
    public Task<CliResult> CliAsync(string level, params string[] extra) =>
        VirtBackupCli.RunAsync(["backup", "--domain", Vm.Name, "--level", level, "--state-dir", StateDirectory, .. extra]);

    /// <summary>A backup through the CLI that must succeed; returns the parsed stream.</summary>
    public async Task<ParsedStream> BackupAsync(string level, params string[] extra)
    {
        var result = await CliAsync(level, extra);
        Assert.True(result.ExitCode == 0, $"virtbackup backup exited {result.ExitCode}: {result.StandardError}");
        return await ParsedStream.ReadAsync(result.StandardOutput);
    }

    /// <summary>A backup run in process, into <paramref name="output"/>.</summary>
    public async Task InProcessAsync(RequestedLevel level, System.IO.Stream output)
    {
        using var libvirt = LibvirtConnection.Open();
        var options = new BackupOptions(Vm.Name, level, [], StreamWriterOptions.Default, FreezeMode.Auto, StateDirectory, BackupOptions.DefaultScratchDirectory);
        await new BackupRun(libvirt, new LocalHostFiles(), Serilog.Core.Logger.None).RunAsync(options, output, CancellationToken.None);
    }

    public static (DomainState State, bool Job, IReadOnlyList<string> Checkpoints) Observe(string domainName)
    {
        using var libvirt = LibvirtConnection.Open();
        using var domain = libvirt.LookupByName(domainName);
        return (domain.GetState().State, domain.IsActive() && domain.GetJobStats().IsActive, domain.ListCheckpoints());
    }

    public void Dispose() => Directory.Delete(StateDirectory, recursive: true);
}
