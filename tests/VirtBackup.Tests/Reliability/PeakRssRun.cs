using System.Diagnostics;

namespace VirtBackup.Tests.Reliability;

/// <summary>One run of the real executable with <paramref name="StandardInput"/> piped in, and its peak resident memory.</summary>
internal sealed record PeakRssRun(int ExitCode, byte[] StandardOutput, string StandardError, long PeakRss)
{
    /// <summary>Runs <c>virtbackup ARGS</c>, sampling VmHWM (the peak RSS so far) from /proc every few milliseconds until it exits.</summary>
    public static async Task<PeakRssRun> RunAsync(IReadOnlyList<string> args, byte[] standardInput, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(VirtBackupCli.ExecutablePath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = new MemoryStream();
        var readOut = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var readErr = process.StandardError.ReadToEndAsync();
        var feed = Task.Run(async () =>
        {
            try
            {
                await process.StandardInput.BaseStream.WriteAsync(standardInput);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The process stopped reading (it refused the input early): that is its answer.
            }
        });
        long peak = 0;
        var status = $"/proc/{process.Id}/status";
        var deadline = Stopwatch.StartNew();
        while (!process.HasExited)
        {
            peak = Math.Max(peak, ReadPeak(status));
            if (deadline.Elapsed > (timeout ?? TimeSpan.FromSeconds(60)))
            {
                process.Kill();
                throw new TimeoutException($"virtbackup {string.Join(' ', args)} did not finish (hang)");
            }

            await Task.Delay(5);
        }

        await Task.WhenAll(readOut, readErr, feed);
        return new PeakRssRun(process.ExitCode, stdout.ToArray(), await readErr, peak);
    }

    private static long ReadPeak(string status)
    {
        try
        {
            foreach (var line in File.ReadLines(status))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
            // It exited between the check and the read.
        }

        return 0;
    }
}
