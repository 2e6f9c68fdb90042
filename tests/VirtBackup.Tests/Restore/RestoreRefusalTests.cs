namespace VirtBackup.Tests.Restore;

/// <summary>What a restore refuses before it writes anything, and what it leaves when it does.</summary>
public class RestoreRefusalTests
{
    [Fact(Timeout = 60_000)]
    public async Task An_incremental_applied_before_its_parent_is_refused_naming_both_checkpoints()
    {
        using var tree = new RestoredTree();
        var (full, _, inc2) = ChainFixtures.FullAndTwoIncrementals();
        await tree.RestoreAsync(full);

        var e = await tree.RefusedAsync<ChainGapException>(inc2);

        Assert.Equal(ErrorCategory.Refused, e.Category);
        Assert.Contains("it continues from checkpoint 'virtbackup-chain-a-0002'", e.Message);
        Assert.Contains("the last checkpoint applied to 'win11' is 'virtbackup-chain-a-0001'", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_of_another_chain_is_refused_naming_both_chains()
    {
        using var tree = new RestoredTree();
        await tree.RestoreAsync(ChainFixtures.Full("chain-a"));
        var other = ChainFixtures.Next(ChainFixtures.Full("chain-b"), 2, 100);

        var e = await tree.RefusedAsync<ChainGapException>(other);

        Assert.Contains("(chain 'chain-b'", e.Message);
        Assert.Contains("it belongs to another chain", e.Message);
        Assert.Contains("of chain 'chain-a'", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_applied_twice_or_without_a_restored_full_is_refused()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();
        var inc1 = await ChainFixtures.BuildAsync(ChainFixtures.Next(full, 2, 100));

        var missing = await Assert.ThrowsAsync<ChainGapException>(() => tree.RestoreAsync(inc1));
        await tree.RestoreAsync(full);
        await tree.RestoreAsync(inc1);
        var twice = await Assert.ThrowsAsync<ChainGapException>(() => tree.RestoreAsync(inc1));

        Assert.Contains("nothing was restored as 'win11'", missing.Message);
        Assert.Contains("was already applied to 'win11'", twice.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_onto_a_restored_copy_is_refused()
    {
        using var tree = new RestoredTree();
        var copy = ChainFixtures.Full() with { Level = BackupLevel.Copy, ChainId = null, Checkpoint = null };
        await tree.RestoreAsync(copy);

        var e = await Assert.ThrowsAsync<ChainGapException>(async () =>
            await tree.RestoreAsync(ChainFixtures.Next(ChainFixtures.Full(), 2, 100)));

        Assert.Contains("was restored from a copy backup", e.Message);
        Assert.Contains("which starts no chain", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_full_restore_over_existing_files_is_refused_without_force_and_names_them()
    {
        using var tree = new RestoredTree();
        var stream = await ChainFixtures.BuildAsync(ChainFixtures.Full());
        await tree.RestoreAsync(stream);

        var e = await tree.RefusedAsync<RestoreRefusedException>(stream);

        Assert.Equal(ErrorCategory.Refused, e.Category);
        Assert.Contains($"disk image '{tree.Disk("vda")}'", e.Message);
        Assert.Contains($"disk image '{tree.Disk("vdb")}'", e.Message);
        Assert.Contains($"NVRAM file '{tree.Nvram()}'", e.Message);
        Assert.Contains($"TPM state directory '{tree.TpmDirectory()}'", e.Message);
        Assert.Contains("Pass --force to replace it, or --as NEWNAME", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task With_force_a_full_restore_replaces_existing_files_and_starts_the_chain_again()
    {
        using var tree = new RestoredTree();
        var first = ChainFixtures.Full("chain-a");
        await tree.RestoreAsync(ChainFixtures.Next(first, 2, 100) with { Level = BackupLevel.Full, Parent = null });

        var result = await tree.RestoreAsync(first, force: true);

        Assert.Equal(ChainFixtures.Image(first, "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.Equal(first.Nvram, await File.ReadAllBytesAsync(tree.Nvram()));
        Assert.Equal(first.Tpm[1].Content, await File.ReadAllBytesAsync(Path.Combine(tree.TpmDirectory(), "tpm2-00.permall")));
        Assert.Equal("virtbackup-chain-a-0001", result.Position.Checkpoint);
        Assert.Empty(tree.StagingLeftovers());
    }

    [Fact(Timeout = 60_000)]
    public async Task An_incremental_onto_an_image_changed_since_the_restore_is_refused_unless_forced()
    {
        using var tree = new RestoredTree();
        var full = ChainFixtures.Full();
        var inc1 = ChainFixtures.Next(full, 2, 100);
        await tree.RestoreAsync(full);
        await using (var image = File.OpenWrite(tree.Disk("vda")))
        {
            image.Write([1, 2, 3]);
        }

        var e = await Assert.ThrowsAsync<RestoreRefusedException>(async () => await tree.RestoreAsync(inc1));
        await tree.RestoreAsync(inc1, force: true);

        Assert.Contains("changed after the last restore (was the VM started?)", e.Message);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("../../etc/cron.d/evil")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    [InlineData("-rf")]
    [InlineData("two words")]
    public async Task A_domain_name_that_is_no_safe_file_name_is_refused_and_needs_as(string name)
    {
        using var tree = new RestoredTree();
        var stream = await ChainFixtures.BuildAsync(ChainFixtures.Full() with { DomainName = name });

        var e = await Assert.ThrowsAsync<RestoreRefusedException>(() => tree.RestoreAsync(stream));
        await tree.RestoreAsync(stream, asName: "renamed");

        Assert.Contains($"the stream's domain name '{name}' cannot be used for file names", e.Message);
        Assert.Contains("restore it with --as NAME", e.Message);
        Assert.True(File.Exists(tree.Disk("vda", name: "renamed")));
        Assert.Equal([tree.Root], Directory.EnumerateFileSystemEntries(tree.Parent));
    }

    [Fact]
    public void A_target_root_with_define_or_a_relative_disk_directory_is_an_invalid_combination()
    {
        Assert.Throws<ArgumentException>(() => new RestoreOptions(Define: true, TargetRoot: "/tmp/x").Validate());
        Assert.Throws<ArgumentException>(() => new RestoreOptions(DiskDirectory: "images").Validate());
        Assert.Throws<ArgumentException>(() => new RestoreOptions(NewName: "../x").Validate());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_disk_directory_with_dot_dot_segments_still_stays_below_the_target_root()
    {
        using var tree = new RestoredTree();
        var run = new RestoreRun(null, VirtBackup.Core.Libvirt.QemuConf.Defaults, Serilog.Core.Logger.None);
        var stream = await ChainFixtures.BuildAsync(ChainFixtures.Full());

        await run.RunAsync(new RestoreOptions(DiskDirectory: "/../../../images", Format: DiskFormat.Raw, TargetRoot: tree.Root),
            new MemoryStream(stream), CancellationToken.None);

        Assert.True(File.Exists(Path.Combine(tree.Root, "images/win11-vda.img")));
        Assert.Equal([tree.Root], Directory.EnumerateFileSystemEntries(tree.Parent));
    }

    [Fact(Timeout = 60_000)]
    public async Task After_an_interrupted_commit_only_the_same_incremental_is_accepted_and_applying_it_again_repairs_the_images()
    {
        using var tree = new RestoredTree();
        var (full, inc1, inc2) = ChainFixtures.FullAndTwoIncrementals();
        await tree.RestoreAsync(full);
        // What a crash halfway through committing inc1 leaves: the marker, and part of inc1 in the image.
        await File.WriteAllTextAsync(Path.Combine(tree.Images, ".virtbackup/win11.committing"), "virtbackup-chain-a-0002\n");
        await using (var image = new FileStream(tree.Disk("vda"), FileMode.Open, FileAccess.Write))
        {
            image.Position = 700_000 + 2 * 4096;
            image.Write(ChainFixtures.Image(inc1, "vda").AsSpan(700_000 + 2 * 4096, 70_000));
        }

        var other = await Assert.ThrowsAsync<ChainGapException>(async () => await tree.RestoreAsync(inc2));
        await tree.RestoreAsync(inc1);
        await tree.RestoreAsync(inc2);

        Assert.Contains("an interrupted restore of 'virtbackup-chain-a-0002' left 'win11' between two states", other.Message);
        Assert.Equal(ChainFixtures.Image(inc2, "vda"), await File.ReadAllBytesAsync(tree.Disk("vda")));
        Assert.False(File.Exists(Path.Combine(tree.Images, ".virtbackup/win11.committing")));
    }

    [Fact(Timeout = 60_000)]
    public async Task Tpm_state_files_in_subdirectories_get_private_directories_owned_by_the_swtpm_user()
    {
        using var tree = new RestoredTree();
        var backup = await StreamFixtures.BuildAsync(Compression.Zstd, nvramSize: 2_000);

        await tree.RestoreAsync(backup.Stream);

        var state = tree.TpmDirectory();
        Assert.Equal(backup.TpmFiles[0].Content, await File.ReadAllBytesAsync(Path.Combine(state, "tpm2/tpm2-00.permall")));
        Assert.Equal("tss:tss 700", await RestoreRoundTripTests.StatAsync(Path.Combine(state, "tpm2")));
        Assert.Equal("tss:tss 600", await RestoreRoundTripTests.StatAsync(Path.Combine(state, "tpm2/tpm2-00.volatilestate")));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_restore_cancelled_while_writing_a_qcow2_disk_stops_qemu_nbd_and_leaves_nothing()
    {
        using var tree = new RestoredTree();
        var stream = await ChainFixtures.BuildAsync(ChainFixtures.Full());
        var records = TarSurgery.Records(stream);
        var stall = records.Last(r => r.Name.StartsWith("disks/vda/0", StringComparison.Ordinal)).HeaderOffset;
        using var cancel = new CancellationTokenSource();
        var input = new StallingStream(stream, (int)stall, cancel);
        var run = new RestoreRun(null, VirtBackup.Core.Libvirt.QemuConf.Defaults, Serilog.Core.Logger.None);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            run.RunAsync(new RestoreOptions(Format: DiskFormat.Qcow2, TargetRoot: tree.Root), input, cancel.Token));

        Assert.Empty(tree.Files());
        Assert.Empty(tree.StagingLeftovers());
    }

    /// <summary>Gives <paramref name="stream"/> up to <paramref name="stallAt"/>, then cancels and waits forever, like a stalled pipe and a Ctrl-C.</summary>
    private sealed class StallingStream(byte[] stream, int stallAt, CancellationTokenSource cancel) : System.IO.Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= stallAt)
            {
                await cancel.CancelAsync();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            var n = Math.Min(buffer.Length, stallAt - _position);
            stream.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
