using System.Text;
using System.Text.Json;

namespace VirtBackup.Tests.Restore;

/// <summary><c>list</c> and <c>verify</c> through the real executable: data on stdout, verdicts as exit codes.</summary>
public class ListVerifyCliTests
{
    private static async Task<byte[]> StreamAsync(int formatVersion = Manifest.CurrentFormatVersion) =>
        await ChainFixtures.BuildAsync(ChainFixtures.Next(ChainFixtures.Full() with { FormatVersion = formatVersion }, 2, 100));

    [Fact(Timeout = 60_000)]
    public async Task List_of_a_version_2_stream_prints_one_line_per_member_with_small_pieces_packed()
    {
        var stream = await StreamAsync(formatVersion: 2);

        var result = await VirtBackupCli.RunAsync(["list"], new MemoryStream(stream));

        Assert.Equal(0, result.ExitCode);
        var lines = Encoding.UTF8.GetString(result.StandardOutput).Split('\n');
        Assert.Equal(
            [
                "virtbackup/manifest.json", "virtbackup/domain.xml", "state/nvram/win11_VARS.fd", "state/tpm/.lock", "state/tpm/tpm2-00.permall",
                "disks/vda/extents.txt", "disks/vda/0000000000018e70.zst", "disks/vda/0000000000020000.zst",
                "disks/vda/0000000000030000.zst", "disks/vda/00000000000b0000.zst", "disks/vdb/extents.txt", "virtbackup/trailer.json",
            ],
            lines[19..^2].Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]));
        // The member at 196608 holds [196608, 202000) and [708192, 720896): 5392 + 12704 bytes.
        Assert.EndsWith(" 18096  disks/vda/0000000000030000.zst", lines[27]);
        Assert.StartsWith("complete: 11 members and the trailer, ", lines[^2]);
    }

    [Fact(Timeout = 60_000)]
    public async Task List_of_a_version_1_stream_prints_the_manifest_and_one_line_per_member_then_the_summary()
    {
        var stream = await StreamAsync(formatVersion: 1);

        var result = await VirtBackupCli.RunAsync(["list"], new MemoryStream(stream));

        Assert.Equal(0, result.ExitCode);
        var lines = Encoding.UTF8.GetString(result.StandardOutput).Split('\n');
        var records = TarSurgery.Records(stream);
        Assert.Equal(
            [
                "domain       win11",
                "uuid         4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
                "level        inc",
                "checkpoint   virtbackup-chain-a-0002",
                "parent       virtbackup-chain-a-0001",
                "chain        chain-a",
                "chain-name   -",
                "created      2026-11-27T10:30:00Z",
                "tool         0.1.0-test",
                "pause        42 ms",
                "freeze       no-agent",
                "compression  zstd level 3, members of 65536 bytes",
                "disk         vda qcow2 1048576 bytes",
                "disk         vdb qcow2 300000 bytes",
                "disk         sdc qcow2 4096 bytes (excluded)",
                "nvram        yes",
                "tpm          2.0",
                "",
                "      STORED         SIZE  MEMBER",
            ],
            lines[..19]);
        // Stored sizes of zstd members depend on the zstd build: they come from an independent walk of the tar.
        (long Size, string Name)[] members =
        [
            (1043, "virtbackup/manifest.json"),
            (1207, "virtbackup/domain.xml"),
            (4098, "state/nvram/win11_VARS.fd"),
            (0, "state/tpm/.lock"),
            (6122, "state/tpm/tpm2-00.permall"),
            (381, "disks/vda/extents.json"),
            (29072, "disks/vda/0000000000018e70.zst"),
            (65536, "disks/vda/0000000000020000.zst"),
            (5392, "disks/vda/0000000000030000.zst"),
            (12704, "disks/vda/00000000000ace60.zst"),
            (57296, "disks/vda/00000000000b0000.zst"),
            (64, "disks/vdb/extents.json"),
            (2994, "virtbackup/trailer.json"),
        ];
        Assert.Equal(members.Select(m => m.Name), records.Select(r => r.Name));
        Assert.Equal(members.Select((m, i) => $"{records[i].Size,12} {m.Size,12}  {m.Name}"), lines[19..^2]);
        Assert.Equal($"complete: 12 members and the trailer, 182915 bytes ({records.SkipLast(1).Sum(r => r.Size)} stored)", lines[^2]);
        Assert.Equal("", lines[^1]);
    }

    [Fact(Timeout = 60_000)]
    public async Task List_json_holds_the_manifest_and_the_trailer_with_every_member()
    {
        var stream = await StreamAsync();

        var result = await VirtBackupCli.RunAsync(["list", "--json"], new MemoryStream(stream));

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StandardOutput);
        Assert.Equal("virtbackup-chain-a-0001", json.RootElement.GetProperty("manifest").GetProperty("parentCheckpoint").GetString());
        Assert.Equal(TarSurgery.Records(stream).Select(r => r.Name).SkipLast(1),
            json.RootElement.GetProperty("trailer").GetProperty("members").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact(Timeout = 60_000)]
    public async Task Verify_exits_0_for_an_intact_stream_and_writes_nothing_to_stdout()
    {
        var result = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(await StreamAsync()));

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.Contains("stream verified: complete and intact; inc backup of win11", result.StandardError);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("verify")]
    [InlineData("list")]
    [InlineData("list --json")]
    public async Task A_truncated_stream_exits_6_naming_the_member_where_it_ends(string verb)
    {
        var stream = await StreamAsync();
        var cut = TarSurgery.Records(stream)[^2];

        var result = await VirtBackupCli.RunAsync(verb.Split(' '), new MemoryStream(stream[..(int)(cut.ContentOffset + 100)]));

        Assert.Equal(6, result.ExitCode);
        Assert.Contains($"Invalid backup stream: member '{cut.Name}'", result.StandardError);
        Assert.Contains("it is truncated", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_stream_cut_at_a_member_boundary_is_incomplete_for_verify()
    {
        var stream = await StreamAsync();
        var trailer = TarSurgery.Records(stream)[^1];

        var result = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(stream[..(int)trailer.HeaderOffset]));

        Assert.Equal(6, result.ExitCode);
        Assert.Contains("without a trailer: it is truncated", result.StandardError);
    }
}
