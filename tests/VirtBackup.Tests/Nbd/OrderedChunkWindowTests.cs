namespace VirtBackup.Tests.Nbd;

/// <summary>The read window's schedule, against a fake read whose completions the test releases one by one.</summary>
public sealed class OrderedChunkWindowTests
{
    [Fact(Timeout = 30_000)]
    public async Task Each_chunk_handed_over_starts_the_next_one_so_the_window_stays_full_until_the_ranges_end()
    {
        // 10 chunks of 100 bytes, 4 in flight: 4 start at once, and every chunk handed over starts one more. Refilling
        // in bursts instead (once half the window drained) was measured on the scale disk and gained nothing.
        var reads = new List<(long Offset, TaskCompletionSource Done)>();
        var log = new List<string>();
        var window = OrderedChunkWindow.RunAsync(
            [new NbdRange(0, 1000)],
            chunkSize: 100,
            inFlight: 4,
            (offset, _) =>
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (log)
                {
                    reads.Add((offset, done));
                    log.Add($"start {offset}");
                }

                return done.Task;
            },
            (offset, data) =>
            {
                lock (log)
                {
                    log.Add($"sink {offset}+{data.Length}");
                }

                return ValueTask.CompletedTask;
            },
            CancellationToken.None);

        for (var i = 0; i < 10; i++)
        {
            TaskCompletionSource done;
            lock (log)
            {
                done = reads[i].Done;
            }

            var handedOver = $"sink {i * 100}+100";
            done.SetResult();
            await WaitForAsync(log, () => log.Contains(handedOver));
        }

        await window;
        Assert.Equal(
            [
                "start 0", "start 100", "start 200", "start 300",
                "sink 0+100", "start 400",
                "sink 100+100", "start 500",
                "sink 200+100", "start 600",
                "sink 300+100", "start 700",
                "sink 400+100", "start 800",
                "sink 500+100", "start 900",
                "sink 600+100",
                "sink 700+100",
                "sink 800+100",
                "sink 900+100",
            ],
            log);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_window_of_one_read_starts_the_next_chunk_only_after_the_previous_one_was_handed_over()
    {
        var log = new List<string>();

        await OrderedChunkWindow.RunAsync(
            [new NbdRange(50, 250)],
            chunkSize: 100,
            inFlight: 1,
            (offset, _) =>
            {
                log.Add($"start {offset}");
                return Task.CompletedTask;
            },
            (offset, data) =>
            {
                log.Add($"sink {offset}+{data.Length}");
                return ValueTask.CompletedTask;
            },
            CancellationToken.None);

        Assert.Equal(["start 50", "sink 50+100", "start 150", "sink 150+100", "start 250", "sink 250+50"], log);
    }

    private static async Task WaitForAsync(object gate, Func<bool> condition)
    {
        while (true)
        {
            bool met;
            lock (gate)
            {
                met = condition();
            }

            if (met)
            {
                return;
            }

            await Task.Delay(1);
        }
    }
}
