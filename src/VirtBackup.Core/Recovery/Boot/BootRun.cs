using System.Diagnostics;
using System.Text.Json;
using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Hosts.Local;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Platform;
using VirtBackup.Core.Restore;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>What to boot and how.</summary>
/// <param name="Throwaway">verify --boot: overlays in the run directory, the serial console to a log there, a display ensured.</param>
/// <param name="LiveRestore">The overlays are named as the domain's images for good (see <see cref="BootLayout"/>); <see cref="LiveRestore"/> pulls the data into them.</param>
public sealed record BootRequest(string Name, IReadOnlyList<string> Streams, string DiskDirectory, bool KeepNetwork, bool Throwaway = false, bool LiveRestore = false);

/// <summary>A booted domain: its record (what was made), definition and served disks.</summary>
public sealed record BootedDomain(BootRecord Record, BootLayout Layout, string Definition, BootState State, TimeSpan Elapsed, IReadOnlyList<string> Targets)
{
    public string SerialLogPath => Path.Combine(Layout.RunDirectory, "serial.log");
}

/// <summary>
/// <c>virtbackup boot</c>: a domain started from a backup chain without restoring it. The chain is checked and
/// served by a background <c>virtbackup serve</c> on a unix socket; each disk becomes a qcow2 overlay backed by
/// its export; the NVRAM and TPM state of the newest stream are written where restore writes them (same owner and
/// modes, <see cref="StateFileWriter"/>) under a new UUID; the definition is restore's (<see cref="BootDefinition"/>);
/// the domain is defined and started. Every part is recorded as it is made, and a failure removes them all again.
/// </summary>
public sealed class BootRun(LibvirtConnection libvirt, QemuConf qemuConf, ILogger log, IReadOnlyList<string> serveCommand)
{
    private const UnixFileMode Traversable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static readonly TimeSpan ServeReadyTimeout = TimeSpan.FromSeconds(60);

    public async Task<BootedDomain> StartAsync(BootRequest request, CancellationToken cancellationToken)
    {
        var elapsed = Stopwatch.StartNew();
        if (RestoreName.Problem(request.Name) is { } problem)
        {
            throw new BootRefusedException($"'{request.Name}' cannot name a booted domain: {problem}");
        }

        if (Posix.EffectiveUserId != 0)
        {
            throw new BootRefusedException("boot needs root (the TPM state goes to swtpm's user, the domain into libvirt's directories)");
        }

        await new StaleBoots(libvirt, log).RemoveAsync(includeRunning: false);

        using (var existing = libvirt.TryLookupByName(request.Name))
        {
            if (existing is not null)
            {
                throw new BootRefusedException($"a domain named '{request.Name}' exists already: boot under another name (--as)");
            }
        }

        var runDirectory = BootLayout.RunDirectoryFor(request.Name);
        if (Directory.Exists(runDirectory))
        {
            throw new BootRefusedException($"'{runDirectory}' exists: a boot named '{request.Name}' is recorded; remove it with virtbackup boot --stop {request.Name}");
        }

        IReadOnlyList<(string Target, long Size)> disks;
        using (var index = ChainIndex.Open(request.Streams))
        {
            disks = index.Disks.Select(d => (d.Target, d.Size)).ToList();
        }

        var state = BootState.Read(request.Streams[^1]);
        var layout = new BootLayout(request.Name, Guid.NewGuid().ToString(), request.Throwaway ? runDirectory : request.DiskDirectory, liveRestore: request.LiveRestore);
        var owner = await SwtpmOwnerAsync(cancellationToken);
        if (!request.Throwaway)
        {
            await new DiskDirAccess(new LocalHypervisorHost(), qemuConf, log).CheckAsync(layout.DiskDirectory, define: true, cancellationToken);
        }

        if (request.LiveRestore && File.Exists(layout.SerialLogPath))
        {
            throw new BootRefusedException($"'{layout.SerialLogPath}' exists: remove it or boot under another name");
        }

        if (!Directory.Exists(BootLayout.DefaultRunRoot))
        {
            Directory.CreateDirectory(BootLayout.DefaultRunRoot, Traversable);
        }

        Directory.CreateDirectory(layout.RunDirectory, Traversable);
        var record = BootRecord.For(layout);
        record.Owner = BootOwner.Current();
        record.SerialLogPath = request.LiveRestore ? layout.SerialLogPath : null;
        record.Save();
        try
        {
            record.ServePid = ServeProcess.Start(serveCommand, layout.SocketPath, request.Streams, layout.ServeLogPath);
            record.Save();
            await ServeProcess.WaitReadyAsync(record.ServePid, layout.ServeLogPath, ServeReadyTimeout, cancellationToken);
            // QEMU runs as its own user: it must be able to connect. The run directory (0711) is all it can reach.
            File.SetUnixFileMode(layout.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead
                | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);

            foreach (var (target, size) in disks)
            {
                var overlay = layout.OverlayPath(target);
                if (File.Exists(overlay))
                {
                    throw new BootRefusedException($"'{overlay}' exists: remove it or boot under another name");
                }

                record.Overlays.Add(overlay);
                record.Save();
                await CreateOverlayAsync(overlay, layout.SocketPath, target, size, cancellationToken);
            }

            await WriteStateAsync(state, layout, record, owner, cancellationToken);
            var targets = disks.Select(d => d.Target).ToList();
            var definition = BootDefinition.Build(state, layout, targets,
                new BootIsolation(request.KeepNetwork, request.Throwaway ? Path.Combine(layout.RunDirectory, "serial.log") : null, request.Throwaway));
            if (request.Throwaway)
            {
                File.WriteAllBytes(Path.Combine(layout.RunDirectory, "serial.log"), []);
            }

            File.WriteAllText(Path.Combine(layout.RunDirectory, "domain.xml"), definition);
            using var domain = libvirt.Define(definition);
            record.Defined = true;
            record.Save();
            domain.Start();
            log.Information("booted {Name} ({Uuid}) from {Streams} stream(s) of {Source} in {Seconds:F2} s; served by pid {Pid} on {Socket}",
                layout.Name, layout.Uuid, request.Streams.Count, state.Manifest.DomainName, elapsed.Elapsed.TotalSeconds, record.ServePid, layout.SocketPath);
            return new BootedDomain(record, layout, definition, state, elapsed.Elapsed, targets);
        }
        catch
        {
            await new BootCleanup(libvirt, log).RemoveAsync(record);
            throw;
        }
    }

    private async Task<(int Uid, int Gid)> SwtpmOwnerAsync(CancellationToken cancellationToken)
    {
        var (uid, gid) = await new LocalHypervisorHost().LookupAccountAsync(qemuConf.SwtpmUser, qemuConf.SwtpmGroup, cancellationToken);
        return (uid ?? throw new BootRefusedException($"the swtpm user '{qemuConf.SwtpmUser}' (swtpm_user in qemu.conf) does not exist"),
            gid ?? throw new BootRefusedException($"the swtpm group '{qemuConf.SwtpmGroup}' (swtpm_group in qemu.conf) does not exist"));
    }

    private static async Task WriteStateAsync(BootState state, BootLayout layout, BootRecord record, (int Uid, int Gid) owner, CancellationToken cancellationToken)
    {
        if (state.Nvram is null && state.TpmFiles.Count == 0)
        {
            return;
        }

        if (File.Exists(layout.NvramPath) && state.Nvram is not null)
        {
            throw new BootRefusedException($"'{layout.NvramPath}' exists: remove it or boot under another name");
        }
        // Restore's one writer of secrets, on this host: owners and modes as restore makes them.
        var writer = new HostStateWriter(new LocalHypervisorHost().Files, layout.NvramPath, layout.TpmStateDirectory(state.Manifest.Tpm.Version), owner);
        if (state.Nvram is not null)
        {
            writer.StageNvram(state.Nvram);
        }

        foreach (var (path, content) in state.TpmFiles)
        {
            writer.StageTpmFile(path, content);
        }

        record.NvramPath = state.Nvram is null ? null : layout.NvramPath;
        record.SwtpmDirectory = state.TpmFiles.Count == 0 ? null : layout.SwtpmDomainDirectory;
        record.Save();
        await writer.CommitAsync(cancellationToken);
    }

    /// <summary>A qcow2 overlay whose backing file is the export (QEMU's json: form of an NBD unix socket).</summary>
    private static async Task CreateOverlayAsync(string overlay, string socket, string target, long size, CancellationToken cancellationToken)
    {
        var backing = "json:{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\""
            + JsonEncodedText.Encode(socket) + "\"},\"export\":\"" + JsonEncodedText.Encode(target) + "\"}";
        var start = new ProcessStartInfo("qemu-img") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", backing, overlay, size.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new BootFailedException("could not start qemu-img");
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BootFailedException($"qemu-img create of overlay '{overlay}' failed: {(await error).Trim()}");
        }

        File.SetUnixFileMode(overlay, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
