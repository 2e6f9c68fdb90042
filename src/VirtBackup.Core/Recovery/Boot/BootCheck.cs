using System.Diagnostics;
using System.Text.RegularExpressions;
using Serilog;
using VirtBackup.Core.Libvirt;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>What <c>verify --boot</c> waits for.</summary>
/// <param name="Timeout">How long the throwaway copy gets to come up (and, with nothing to wait for, must keep running).</param>
public sealed record BootCheckOptions(TimeSpan Timeout, Regex? ExpectConsole, string? ScreenshotPath);

/// <summary>The outcome of <c>verify --boot</c>; <see cref="Failure"/> is null when the backup came up.</summary>
public sealed record BootCheckReport(
    string Name,
    string Source,
    string? Checkpoint,
    double BootSeconds,
    double ElapsedSeconds,
    bool DomainRunning,
    bool? TpmAccepted,
    bool? AgentAnswered,
    bool? ConsoleMatched,
    string? Screenshot,
    string? Failure)
{
    public bool Passed => Failure is null;
}

/// <summary>
/// <c>verify --boot</c>: boots an isolated throwaway copy of the chain (<c>vbverify-XXXXXXXX</c>, new UUID, no network,
/// overlays in its run directory, serial console logged there, a VNC display on 127.0.0.1 when it has none) and
/// watches it until every check passes or the timeout: the domain keeps running, swtpm's log has no error and no
/// manufacturing (the restored state was used), the guest agent answers when the domain has an agent channel, the
/// serial console matches the expected pattern. Then a screenshot, and everything it made is removed, whatever
/// happened (also on cancellation).
/// </summary>
public sealed class BootCheck(LibvirtConnection libvirt, BootRun boot, ILogger log)
{
    public const string SwtpmLogDirectory = "/var/log/swtpm/libvirt/qemu";
    public const string QemuLogDirectory = "/var/log/libvirt/qemu";

    public static string NewName() => $"vbverify-{Guid.NewGuid():N}"[..17];

    public async Task<BootCheckReport> RunAsync(IReadOnlyList<string> streams, BootCheckOptions options, CancellationToken cancellationToken)
    {
        var name = NewName();
        var elapsed = Stopwatch.StartNew();
        BootedDomain? booted = null;
        try
        {
            booted = await boot.StartAsync(new BootRequest(name, streams, BootLayout.RunDirectoryFor(name), KeepNetwork: false, Throwaway: true), cancellationToken);
            return await WatchAsync(booted, options, elapsed, cancellationToken);
        }
        catch (VirtBackupException e) when (booted is null && e is not BootRefusedException && e.Category is ErrorCategory.Libvirt)
        {
            // The domain did not start: swtpm refusing the TPM state or QEMU refusing the definition end here.
            var swtpm = SwtpmProblem(name);
            return new BootCheckReport(name, "", null, 0, elapsed.Elapsed.TotalSeconds, false, swtpm is null ? null : false, null, null, null,
                $"the domain did not start: {e.Message}{(swtpm is null ? "" : $"; swtpm: {swtpm}")}");
        }
        finally
        {
            if (booted is not null)
            {
                await new BootCleanup(libvirt, log).RemoveAsync(booted.Record);
            }

            foreach (var file in new[] { Path.Combine(SwtpmLogDirectory, $"{name}-swtpm.log"), Path.Combine(QemuLogDirectory, $"{name}.log") })
            {
                try
                {
                    File.Delete(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    log.Warning("could not remove {File}: {Message}", file, e.Message);
                }
            }
        }
    }

    private async Task<BootCheckReport> WatchAsync(BootedDomain booted, BootCheckOptions options, Stopwatch elapsed, CancellationToken cancellationToken)
    {
        var name = booted.Layout.Name;
        var hasTpm = booted.State.TpmFiles.Count > 0;
        var hasAgent = BootDefinition.HasAgentChannel(booted.Definition);
        bool? agent = hasAgent ? false : null;
        bool? console = options.ExpectConsole is null ? null : false;
        string? failure = null;
        var running = false;
        using var domain = libvirt.LookupByName(name);
        while (true)
        {
            var state = domain.GetState();
            running = state.State == DomainState.Running;
            if (!running)
            {
                failure = $"the domain is {state} instead of running";
                break;
            }

            if (hasTpm && SwtpmProblem(name) is { } swtpm)
            {
                failure = $"swtpm did not accept the TPM state: {swtpm}";
                break;
            }

            if (agent == false && domain.IsGuestAgentResponsive(1))
            {
                agent = true;
            }

            if (console == false && options.ExpectConsole!.IsMatch(ReadShared(booted.SerialLogPath)))
            {
                console = true;
            }

            var waitingFor = agent == false || console == false;
            var timedOut = elapsed.Elapsed >= options.Timeout;
            if (!waitingFor && (timedOut || agent == true || console == true))
            {
                // Everything answered: it must still be running now (a guest that crashes right after its banner fails).
                var now = domain.GetState();
                running = now.State == DomainState.Running;
                failure = running ? null : $"the domain is {now} instead of running";
                break;
            }

            if (timedOut)
            {
                var missing = new List<string>();
                if (agent == false)
                {
                    missing.Add("the guest agent did not answer");
                }

                if (console == false)
                {
                    missing.Add($"the serial console did not match '{options.ExpectConsole}'");
                }

                failure = $"not up within {options.Timeout.TotalSeconds:F0} s: {string.Join(", ", missing)}";
                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }

        string? screenshot = null;
        if (options.ScreenshotPath is { } png && domain.IsActive())
        {
            screenshot = await ScreenshotAsync(name, png, cancellationToken);
        }

        var manifest = booted.State.Manifest;
        return new BootCheckReport(name, manifest.DomainName, manifest.Checkpoint, booted.Elapsed.TotalSeconds, elapsed.Elapsed.TotalSeconds,
            running, hasTpm ? failure?.StartsWith("swtpm", StringComparison.Ordinal) != true : null, agent, console, screenshot, failure);
    }

    /// <summary>An error or a manufacture of a new TPM in the domain's swtpm log, or null.</summary>
    public static string? SwtpmProblem(string name)
    {
        var text = ReadShared(Path.Combine(SwtpmLogDirectory, $"{name}-swtpm.log"));
        foreach (var line in text.Split('\n'))
        {
            if (line.Contains("error", StringComparison.OrdinalIgnoreCase) || line.Contains("manufactur", StringComparison.OrdinalIgnoreCase))
            {
                return line.Trim();
            }
        }

        return null;
    }

    private async Task<string?> ScreenshotAsync(string name, string png, CancellationToken cancellationToken)
    {
        var ppm = Path.Combine(BootLayout.RunDirectoryFor(name), "screen.ppm");
        var start = new ProcessStartInfo("virsh") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "-c", LibvirtConnection.SystemUri, "screenshot", name, ppm })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0 || !File.Exists(ppm))
        {
            log.Warning("no screenshot of {Name}: {Error}", name, (await error).Trim());
            return null;
        }

        try
        {
            // QEMU's screendump gives a PPM; a libvirt that asks QEMU for PNG already gives one.
            var image = await File.ReadAllBytesAsync(ppm, cancellationToken);
            await File.WriteAllBytesAsync(png, PngEncoder.IsPng(image) ? image : PngEncoder.FromPpm(image), cancellationToken);
            return png;
        }
        catch (InvalidDataException e)
        {
            log.Warning("no screenshot of {Name}: virsh screenshot gave neither PPM nor PNG ({Message})", name, e.Message);
            return null;
        }
    }

    private static string ReadShared(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
