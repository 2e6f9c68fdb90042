using System.Text.RegularExpressions;
using VirtBackup.Core.Nbd;
using VirtBackup.Core.Recovery;
using VirtBackup.IntegrationTests.Hosts;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.IntegrationTests.Reliability;
using static VirtBackup.IntegrationTests.Recovery.ServedLabChain;

namespace VirtBackup.IntegrationTests.Recovery;

/// <summary>
/// <c>virtbackup serve</c> of a real chain (<see cref="ServedLabChain"/>: a full and two incrementals of the agent VM)
/// read by the real peers: qemu-img compare against the paused source, nbdinfo's map, qemu-io on a corrupted data
/// member, and the single-file recipe of docs/RECOVERY.md with guestfish.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class ServeLabTests(ServedLabChain chain) : IClassFixture<ServedLabChain>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-servelab-").FullName;

    [Fact(Timeout = 120_000)]
    public async Task Each_export_of_a_full_and_two_incrementals_equals_the_source_at_the_last_backup_and_nbdinfo_maps_vdb_exactly()
    {
        using var serve = await ServeAsync(chain.Streams);

        foreach (var target in chain.Vm.DiskTargets)
        {
            var compare = await HostTools.RunAsync("qemu-img", ["compare", "-U", "-f", "raw", "-F", "qcow2", Uri(target), chain.Vm.DiskPath(target)]);
            Assert.True(compare.ExitCode == 0, $"{target}: {compare}");
            Assert.Equal("Images are identical.\n", compare.StandardOutput);
        }

        var map = await HostTools.RunCheckedAsync("nbdinfo", ["--map", Uri("vdb")]);
        // The full's map records every range it holds no data for as zeros (never-written ranges included), so the
        // served disk has data and zero extents only; adjacent extents of one kind read as one, whatever stream they
        // come from. Zeros over data (inc1 at 9M, inc2 at 0 and 20M) and data over zeros (inc2 at 40M) are where written.
        Assert.Equal(
        [
            Line(0, K, "2 zero"), Line(K, M + M / 2 - K, "0 data"), Line(M + M / 2, 4 * M - (M + M / 2), "2 zero"),
            Line(4 * M, K, "0 data"), Line(4 * M + K, 4 * M - K, "2 zero"),
            Line(8 * M, M, "0 data"), Line(9 * M, M, "2 zero"), Line(10 * M, 2 * M, "0 data"),
            Line(12 * M, 8 * M + K, "2 zero"), Line(20 * M + K, M - K, "0 data"), Line(21 * M, 19 * M, "2 zero"),
            Line(40 * M, K, "0 data"), Line(40 * M + K, 24 * M - K, "2 zero"),
        ], Lines(map.StandardOutput));
        await using var vdb = await NbdClient.ConnectAsync(NbdUri.Parse(Uri("vdb")));
        var expected = ExpectedVdb();
        await AssertReadsAsync(vdb, expected, [(0, expected.Length)]);
        Assert.Equal(0, await StopAsync(serve));
    }

    [Fact(Timeout = 120_000)]
    public async Task A_bit_flip_in_one_data_member_makes_reads_of_its_range_fail_with_EIO_logs_the_member_and_leaves_the_rest_readable()
    {
        const string Member = "disks/vdb/0000000000800000.zst"; // the full's 0x13 from 8M to 12M; inc1 zeroed 9M-10M
        var damaged = Path.Combine(_work, "full-damaged.tar");
        File.Copy(chain.Streams[0], damaged);
        long flipped;
        using (var stream = StreamFile.Open(damaged))
        {
            var member = stream.Members.Single(m => m.Name == Member);
            flipped = member.DataOffset + (member.StoredSize / 2);
        }

        await using (var file = new FileStream(damaged, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = flipped;
            var b = (byte)file.ReadByte();
            file.Position = flipped;
            file.WriteByte((byte)(b ^ 0x10));
        }

        using var serve = await ServeAsync([damaged, .. chain.Streams.Skip(1)]);

        foreach (var offset in new[] { 8 * M, 10 * M, 12 * M - 4096 })
        {
            var read = await HostTools.RunAsync("qemu-io", ["-r", "-f", "raw", Uri("vdb"), "-c", $"read {offset} 4k"]);
            Assert.True(read.ExitCode != 0, $"read at {offset}: {read}");
            Assert.Contains("read failed: Input/output error", read.StandardOutput + read.StandardError);
        }

        var expected = ExpectedVdb();
        await using (var vdb = await NbdClient.ConnectAsync(NbdUri.Parse(Uri("vdb"))))
        {
            await AssertReadsAsync(vdb, expected, [(0, 8 * M), (9 * M, M), (12 * M, expected.Length - 12 * M)]);
        }

        var vda = await HostTools.RunAsync("qemu-img", ["compare", "-U", "-f", "raw", "-F", "qcow2", Uri("vda"), chain.Vm.DiskPath("vda")]);
        Assert.True(vda.ExitCode == 0, $"vda: {vda}");
        Assert.Equal(0, await StopAsync(serve));
        var corrupt = serve.StandardError.Split('\n').Where(l => l.Contains("is corrupt", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(corrupt);
        Assert.Contains($"ERR member '{Member}' of '{damaged}' is corrupt (", line);
        Assert.EndsWith("): reads of disk bytes 8388608..12582911 fail with EIO", line);
    }

    [Fact(Timeout = 300_000)]
    public async Task The_single_file_recipe_of_RECOVERY_md_run_verbatim_copies_the_file_out_of_the_served_ext4_disk()
    {
        var recipe = Regex.Match(await File.ReadAllTextAsync(Path.Combine(LabHost.RepoRoot, "docs", "RECOVERY.md")),
            @"<!-- single-file:begin -->\s*```bash\n(?<script>.*?)```\s*<!-- single-file:end -->", RegexOptions.Singleline);
        Assert.True(recipe.Success, "docs/RECOVERY.md has no single-file block");
        var output = Directory.CreateDirectory(Path.Combine(_work, "out")).FullName;
        var environment = new Dictionary<string, string?>
        {
            ["PATH"] = $"{Path.GetDirectoryName(VirtBackupCliPath)}:{Environment.GetEnvironmentVariable("PATH")}",
            ["STREAMS"] = string.Join(' ', chain.Streams),
            ["SOCKET"] = Path.Combine(_work, "files.sock"),
            ["DISK"] = "vda",
            ["DEVICE"] = "/dev/sda",
            ["FILE"] = FileInDisk,
            ["OUT"] = output,
        };
        // A host without a kernel of its own (this lab) lends libguestfs's appliance an unpacked one.
        foreach (var assignment in (await LabHost.RunScriptAsync("guestfs-kernel.sh", [], CancellationToken.None)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            environment[assignment[..assignment.IndexOf('=')]] = assignment[(assignment.IndexOf('=') + 1)..];
        }

        var run = await HostTools.RunAsync("bash", ["-c", $"set -euo pipefail; cd '{_work}'\n{recipe.Groups["script"].Value}"], environment);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(FileContent, await File.ReadAllBytesAsync(Path.Combine(output, Path.GetFileName(FileInDisk))));
        Assert.Equal([Path.Combine(output, Path.GetFileName(FileInDisk))], Directory.GetFiles(output));
        Assert.False(File.Exists(environment["SOCKET"]), "serve left its socket");
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static string VirtBackupCliPath => VirtBackup.Testing.VirtBackupCli.ExecutablePath;

    private string Socket => Path.Combine(_work, "nbd.sock");

    private string Uri(string target) => $"nbd+unix:///{target}?socket={Socket}";

    private async Task<CliProcess> ServeAsync(IReadOnlyList<string> streams)
    {
        var serve = CliProcess.Start(["serve", "--socket", Socket, .. streams]);
        await serve.WaitForStderrAsync("ready: ", TimeSpan.FromSeconds(60));
        return serve;
    }

    private static async Task<int> StopAsync(CliProcess serve)
    {
        serve.Signal(Signals.Term);
        return (await serve.WaitForExitAsync(TimeSpan.FromSeconds(30))).ExitCode;
    }

    /// <summary>Reads each range in 4 MiB requests and compares it with the same range of <paramref name="expected"/>.</summary>
    private static async Task AssertReadsAsync(NbdClient client, byte[] expected, IReadOnlyList<(int Offset, int Length)> ranges)
    {
        Assert.Equal(expected.Length, client.ExportSize);
        var buffer = new byte[4 * M];
        foreach (var (offset, length) in ranges)
        {
            for (var at = offset; at < offset + length; at += buffer.Length)
            {
                var piece = buffer.AsMemory(0, Math.Min(buffer.Length, offset + length - at));
                await client.ReadAsync(at, piece);
                Assert.True(piece.Span.SequenceEqual(expected.AsSpan(at, piece.Length)), $"vdb differs in [{at}, {at + piece.Length})");
            }
        }
    }

    private static string Line(long offset, long length, string kind) => $"{offset} {length} {kind}";

    private static List<string> Lines(string map) =>
        map.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            .ToList();
}
