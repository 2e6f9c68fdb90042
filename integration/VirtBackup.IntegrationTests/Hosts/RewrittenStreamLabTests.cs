using System.Text;
using VirtBackup.IntegrationTests.Backup;
using VirtBackup.IntegrationTests.Lab;
using VirtBackup.Testing;
using VirtBackup.Tests.Stream;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>
/// A lab VM's real full and incremental streams, and the state of the VM at each of them: taken once for every
/// test of <see cref="RewrittenStreamLabTests"/>.
/// </summary>
public sealed class LabChainFixture : IAsyncLifetime
{
    private BackupFixture? _backups;

    public LabVm Vm { get; private set; } = null!;

    public byte[] Full { get; private set; } = [];

    public byte[] Inc { get; private set; } = [];

    public SourceState AtFull { get; private set; } = null!;

    public SourceState AtInc { get; private set; } = null!;

    public TempDirectory Work { get; } = new();

    public async Task InitializeAsync()
    {
        Vm = await LabVm.CreateAsync(diskSize: "32M", fill: true);
        _backups = new BackupFixture(Vm);
        (var full, AtFull) = await SourceState.BackUpPausedAsync(Vm, Work.Sub("at-full"), () => _backups.BackupAsync("full"));
        await Vm.InjectWriteAsync("vda", "16M", "1M", "random");
        await Vm.InjectWriteAsync("vda", "9M", "64K", "0x5a");
        (var inc, AtInc) = await SourceState.BackUpPausedAsync(Vm, Work.Sub("at-inc"), () => _backups.BackupAsync("inc"));
        (Full, Inc) = (full.Bytes, inc.Bytes);
    }

    public async Task DisposeAsync()
    {
        _backups?.Dispose();
        await Vm.DisposeAsync();
        Work.Dispose();
    }
}

/// <summary>
/// Streams another tar tool rewrote, on a lab VM's real full and incremental (docs/FORMAT.md §9): borg 1.2
/// import-tar/export-tar and GNU tar unpack and repack in the original member order with --format=gnu, pax and
/// ustar. verify and list accept each, and the rewritten full then incremental restore equal to the VM at the
/// incremental; one changed content byte is refused and leaves the restored state as it was. The header flavours
/// themselves, on synthetic streams, are tests/VirtBackup.Tests/Stream/RewrittenStreamTests.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class RewrittenStreamLabTests(LabChainFixture chain) : IClassFixture<LabChainFixture>, IDisposable
{
    private readonly List<Repack> _repacks = [];

    public void Dispose() => _repacks.ForEach(r => r.Dispose());

    [Theory(Timeout = 180_000)]
    [InlineData("borg")]
    [InlineData("gnu")]
    [InlineData("pax")]
    [InlineData("ustar")]
    public async Task A_rewritten_full_and_incremental_of_a_lab_vm_verify_list_like_the_originals_and_restore_equal_to_the_vm(string tool)
    {
        var full = await RewriteAsync(chain.Full, tool);
        var inc = await RewriteAsync(chain.Inc, tool);
        if (tool != "ustar")
        {
            // A ustar repack may give the very bytes back: the writer's own headers are what GNU tar writes in ustar.
            Assert.NotEqual(chain.Inc, inc);
        }

        foreach (var (original, rewritten) in new[] { (chain.Full, full), (chain.Inc, inc) })
        {
            var verify = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(rewritten));
            Assert.True(verify.ExitCode == 0, verify.StandardError);
            var list = await VirtBackupCli.RunAsync(["list"], new MemoryStream(rewritten));
            var listOriginal = await VirtBackupCli.RunAsync(["list"], new MemoryStream(original));
            Assert.Equal((0, Encoding.UTF8.GetString(listOriginal.StandardOutput)), (list.ExitCode, Encoding.UTF8.GetString(list.StandardOutput)));
        }

        var root = chain.Work.Sub($"root-{tool}");
        await RestoreAsync(full, root, expectedExitCode: 0);
        await chain.AtFull.AssertRestoredBelowAsync(root, chain.Vm);
        await RestoreAsync(inc, root, expectedExitCode: 0);
        await chain.AtInc.AssertRestoredBelowAsync(root, chain.Vm);
    }

    /// <summary>One flavour here: the unit tests refuse a changed byte in every flavour and member kind.</summary>
    [Fact(Timeout = 180_000)]
    public async Task A_gnu_repack_of_the_lab_incremental_with_one_changed_content_byte_is_refused_naming_the_member_and_restores_nothing()
    {
        var changed = "";
        var corrupt = await NewRepack().GnuTarAsync(chain.Inc, "gnu", change: (dir, names) =>
        {
            // vda's biggest data member of the incremental: it holds the random write (with others packed in format 2).
            changed = names.Where(n => n.StartsWith("disks/vda/", StringComparison.Ordinal) && n.EndsWith(".zst", StringComparison.Ordinal))
                .MaxBy(n => new FileInfo(Path.Combine(dir, n)).Length)!;
            var path = Path.Combine(dir, changed);
            var bytes = File.ReadAllBytes(path);
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(path, bytes);
        });
        var root = chain.Work.Sub("corrupt");
        await RestoreAsync(chain.Full, root, expectedExitCode: 0);

        var verify = await VirtBackupCli.RunAsync(["verify"], new MemoryStream(corrupt));
        var restore = await RestoreAsync(corrupt, root, expectedExitCode: 6);

        Assert.Equal(6, verify.ExitCode);
        foreach (var refusal in new[] { verify.StandardError, restore.StandardError })
        {
            Assert.Contains($"Invalid backup stream: member '{changed}'", refusal);
        }

        await chain.AtFull.AssertRestoredBelowAsync(root, chain.Vm);
    }

    /// <summary>Each rewrite in its own directory (a borg repository takes one import).</summary>
    private async Task<byte[]> RewriteAsync(byte[] stream, string tool) =>
        tool == "borg" ? await NewRepack().BorgAsync(stream) : await NewRepack().GnuTarAsync(stream, tool);

    private Repack NewRepack()
    {
        var repack = new Repack();
        _repacks.Add(repack);
        return repack;
    }

    private static async Task<CliResult> RestoreAsync(byte[] stream, string root, int expectedExitCode)
    {
        var restore = await VirtBackupCli.RunAsync(["restore", "--target-root", root], new MemoryStream(stream));
        Assert.True(restore.ExitCode == expectedExitCode, $"restore exited {restore.ExitCode}, not {expectedExitCode}: {restore.StandardError}");
        return restore;
    }
}
