namespace VirtBackup.Tests.Stream;

/// <summary>
/// Every change to a valid stream breaks a hash or the structure, so the reader must refuse every mutation
/// with a <see cref="StreamFormatException"/>: never accept it, never throw anything else, never hang.
/// </summary>
public class StreamMutationPropertyTests
{
    private static async Task<byte[]> SmallStreamAsync()
    {
        var disk = StreamFixtures.Disk("vda", 200_000, 11,
            new DiskExtent(0, 70_000, false),
            new DiskExtent(70_000, 30_000, true),
            new DiskExtent(131_072, 20_000, false));
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, disks: [disk], nvramSize: 2_000);
        return backup.Stream;
    }

    private static IEnumerable<(string Description, byte[] Stream)> Mutations(byte[] valid)
    {
        var rnd = new Random(20261127);
        for (var cut = 0; cut < valid.Length; cut += 512)
        {
            yield return ($"truncated at {cut}", valid[..cut]);
        }

        yield return ("truncated one byte short", valid[..^1]);
        for (var i = 0; i < 100; i++)
        {
            var at = rnd.Next(valid.Length);
            var mask = (byte)(1 << rnd.Next(8));
            var copy = (byte[])valid.Clone();
            copy[at] ^= mask;
            yield return ($"bit 0x{mask:x2} flipped at {at}", copy);
        }

        foreach (var variant in MemberReorderings.Of(valid, rnd, swaps: 25))
        {
            yield return variant;
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_mutation_of_a_valid_stream_is_refused_with_a_StreamFormatException()
    {
        var valid = await SmallStreamAsync();
        Assert.IsType<TrailerMember>((await StreamFixtures.ReadAllAsync(valid))[^1]);
        var mutations = Mutations(valid).ToList();
        Assert.InRange(mutations.Count, 200, 400);

        var failures = new List<string>();
        foreach (var (description, stream) in mutations)
        {
            foreach (var options in new[] { ReaderOptions.Default, ReaderOptions.ListOnly })
            {
                try
                {
                    var reader = new BackupStreamReader(new UnseekableStream(new MemoryStream(stream, writable: false)), options);
                    await reader.VerifyAsync();
                    failures.Add($"{description} (decode={options.DecodeData}): accepted");
                }
                catch (StreamFormatException e)
                {
                    if (string.IsNullOrEmpty(e.Member) || !e.Message.Contains($"member '{e.Member}'", StringComparison.Ordinal))
                    {
                        failures.Add($"{description}: message does not name the member: {e.Message}");
                    }
                }
                catch (Exception e)
                {
                    failures.Add($"{description} (decode={options.DecodeData}): {e.GetType().Name}: {e.Message}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
