namespace VirtBackup.Bench;

/// <summary>
/// Issue 11, boot: the wall time of <c>virtbackup boot</c> (its start to its exit, which is when libvirt has the
/// domain running) from a full stream of the 4 GiB disk, against a plain <c>virsh start</c> of the same VM restored
/// (<c>restore --as --define</c> once, untimed); the same boot from the 32 GiB disk's stream; and, for scale,
/// <c>virtbackup restore --define</c> followed by <c>virsh start</c>. Interleaved; each booted or started domain
/// is removed again, untimed, before the next step.
/// </summary>
internal sealed class BootBench(BenchContext context)
{
    public async Task<IReadOnlyList<ResultRow>> RunAsync()
    {
        var options = context.Options;
        var full4 = await context.FullStreamAsync(options.Domain4G);
        var full32 = await context.FullStreamAsync(options.Domain32G);
        var disks = options.DiskDirectory;
        var restored = $"{options.Domain4G}-r";
        var restoredAndStarted = $"{options.Domain4G}-rs";
        await Restore(restored, full4, force: false);

        var boot4 = new Samples("s");
        var boot32 = new Samples("s");
        var start = new Samples("s");
        var restoreStart = new Samples("s");

        async Task Boot(string stream, string name, Samples? into)
        {
            try
            {
                var run = await context.Tool.RunAsync(options.VirtBackup, ["boot", "--as", name, "--disk-dir", disks, stream]);
                into?.Add(run.Seconds);
            }
            finally
            {
                await Tool.HelperAsync(options.VirtBackup, "boot", "--stop", name);
            }
        }

        async Task Start(Samples? into)
        {
            var run = await context.Tool.RunAsync("virsh", ["-q", "start", restored]);
            into?.Add(run.Seconds);
            await Tool.HelperAsync("virsh", "-q", "destroy", restored);
        }

        // The first restore defines the domain; every later one replaces it (--force), each timed with its start.
        async Task RestoreAndStart(Samples? into)
        {
            var seconds = await Restore(restoredAndStarted, full4, force: into is not null);
            seconds += (await context.Tool.RunAsync("virsh", ["-q", "start", restoredAndStarted])).Seconds;
            into?.Add(seconds);
            await Tool.HelperAsync("virsh", "-q", "destroy", restoredAndStarted);
        }

        try
        {
            // A warm-up of each (page cache, first start of each program), not counted.
            await Boot(full4, $"{options.Domain4G}-b", null);
            await Boot(full32, $"{options.Domain32G}-b", null);
            await Start(null);
            await RestoreAndStart(null);
            for (var i = 0; i < options.Runs; i++)
            {
                foreach (var first in BenchContext.Alternate(i))
                {
                    if (first)
                    {
                        await Boot(full4, $"{options.Domain4G}-b", boot4);
                        await Boot(full32, $"{options.Domain32G}-b", boot32);
                    }
                    else
                    {
                        await Start(start);
                    }
                }

                await RestoreAndStart(restoreStart);
            }
        }
        finally
        {
            foreach (var name in new[] { restored, restoredAndStarted })
            {
                await Tool.HelperAsync("bash", options.DomainScript, "remove", name);
            }
        }

        var sizeRatio = boot32.Median / boot4.Median;
        var restoreRatio = restoreStart.Median / boot4.Median;
        return
        [
            ResultRow.AtMost(
                "7", "boot from a full stream of the 4 GiB disk until the domain runs (wall time)", "virtbackup boot", boot4, "virsh start of it restored", start,
                2.0,
                [
                    "ours: virtbackup boot --as NAME --disk-dir DIR FULL_STREAM (serve started and ready, qcow2 overlay, NVRAM and TPM state, define, start); exits once libvirt has the domain running",
                    "peer: virsh start of the same VM restored once (virtbackup restore --as NAME --define); both domains destroyed again, untimed, after each run",
                ]),
            new ResultRow(
                "7b", "  boot from the 32 GiB disk's full stream vs the 4 GiB one's", "32 GiB disk", boot32, "4 GiB disk", boot4,
                sizeRatio, "<= 1.20", sizeRatio <= 1.2,
                ["the same 768 MiB of data, spread over 32 GiB"]),
            new ResultRow(
                "7r", "  restore + virsh start of the 4 GiB disk vs boot", "virtbackup restore + virsh start", restoreStart, "virtbackup boot", boot4,
                restoreRatio, "info", null,
                ["virtbackup restore --as NAME --define --force --disk-dir DIR < FULL_STREAM, then virsh start NAME: the wait boot saves"]),
        ];

        async Task<double> Restore(string name, string stream, bool force)
        {
            string[] arguments = ["restore", "--as", name, "--define", "--disk-dir", disks, .. force ? new[] { "--force" } : []];
            return (await context.Tool.RunAsync(options.VirtBackup, arguments, stdinFile: stream)).Seconds;
        }
    }
}
