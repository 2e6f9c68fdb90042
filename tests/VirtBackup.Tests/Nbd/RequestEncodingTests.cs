using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Nbd;

/// <summary>What exactly goes on the wire: the fake server records each request and acknowledges it.</summary>
public sealed class RequestEncodingTests
{
    private const ushort Trim = 1 << 5;
    private const ushort WriteZeroes = 1 << 6;

    [Fact(Timeout = 30000)]
    public async Task Write_commands_are_encoded_with_the_expected_types_flags_ranges_and_payloads()
    {
        var requests = new List<FakeRequest>();
        await using var server = new FakeNbdServer(async c =>
        {
            while (true)
            {
                var request = await c.ReadRequestAsync();
                if (request.Type == 2)
                {
                    break;
                }

                lock (requests)
                {
                    requests.Add(request);
                }

                await c.SendSimpleReplyAsync(request.Handle, 0);
            }
        })
        {
            ExportSize = 64L * 1024 * 1024,
            TransmissionFlags = FakeNbdServer.DefaultFlags | Trim | WriteZeroes,
            BlockSize = (512, 4096, 65536),
        }.Start();
        var client = await NbdClient.ConnectAsync(server.Uri);

        await client.WriteAsync(4096, Enumerable.Range(0, 65536 + 512).Select(i => (byte)i).ToArray());
        await client.WriteZeroesAsync(1 << 20, 1 << 20);
        await client.WriteZeroesAsync(3 << 20, 4096, noHole: true);
        await client.TrimAsync(8 << 20, 8192);
        await client.FlushAsync();
        await client.DisposeAsync();

        Assert.Equal(
        [
            (1, 0, 4096L, 65536u),
            (1, 0, 4096L + 65536, 512u),
            (6, 0, 1L << 20, 1u << 20),
            (6, 2, 3L << 20, 4096u),
            (4, 0, 8L << 20, 8192u),
            (3, 0, 0L, 0u),
        ], requests.Select(r => ((int)r.Type, (int)r.Flags, r.Offset, r.Length)));
        Assert.Equal(Enumerable.Range(0, 65536).Select(i => (byte)i), requests[0].Payload);
        Assert.Equal(Enumerable.Range(65536, 512).Select(i => (byte)i), requests[1].Payload);
        Assert.Equal(requests.Count, requests.Select(r => r.Handle).Distinct().Count());
    }
}
