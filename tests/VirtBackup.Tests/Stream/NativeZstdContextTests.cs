using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

/// <summary>
/// libzstd's compression contexts (a few MiB each) are pooled: a backup compresses on whichever thread-pool thread is
/// free, and contexts kept per thread grew with the threads the pool happened to use (rss.sh: 67 to 84 MiB between runs).
/// </summary>
public sealed class NativeZstdContextTests
{
    [Fact]
    public void Compressing_once_on_each_of_32_threads_in_turn_creates_fewer_contexts_than_threads_and_each_frame_decodes()
    {
        Assert.True(NativeZstd.IsAvailable, "libzstd.so.1 is part of every Debian system");
        var source = Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 7 % 251)).ToArray();
        var before = NativeZstd.ContextsCreated;

        var decoded = new List<byte[]>();
        for (var i = 0; i < 32; i++)
        {
            // Asserting on the thread would end the test process on a failure: the thread only compresses and decodes.
            var thread = new Thread(() =>
            {
                try
                {
                    var frame = new byte[ZstdFrames.CompressBound(source.Length)];
                    var length = NativeZstd.Compress(source, frame, 3, []);
                    var content = new byte[source.Length];
                    var written = NativeZstd.Decompress(frame.AsSpan(0, length), content, checkChecksum: true, out _);
                    decoded.Add(written == source.Length ? content : []);
                }
                catch (Exception)
                {
                    decoded.Add([]);
                }
            });
            thread.Start();
            thread.Join();
        }

        Assert.All(decoded, content => Assert.Equal(source, content));
        Assert.Equal(32, decoded.Count);
        // One thread at a time: one context reused (per-thread contexts: 32). Other tests compressing at the same time may
        // add as many as they compress at once, far fewer than 16.
        Assert.InRange(NativeZstd.ContextsCreated - before, 0, 15);
    }
}
