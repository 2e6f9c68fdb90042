namespace VirtBackup.IntegrationTests.Backup;

/// <summary>
/// The guest-agent VM's disk (a whole-disk ext4, no partition table) as raw images in a private directory: a backup
/// restored with <c>virtbackup restore --format raw</c>, a copy of the live disk, and what e2fsprogs says about them.
/// </summary>
internal sealed class Ext4Image : IDisposable
{
    /// <summary>The primary superblock: 1 KiB at byte 1024, whatever the block size.</summary>
    public const long SuperblockOffset = 1024;

    private readonly string _work = Directory.CreateTempSubdirectory("vbt-ext4-").FullName;

    /// <summary>Restores <paramref name="stream"/> (a complete backup of <paramref name="vm"/>) and returns its vda image.</summary>
    public async Task<string> RestoreAsync(LabVm vm, byte[] stream)
    {
        var root = Path.Combine(_work, "restore");
        var restore = await VirtBackupCli.RunAsync(["restore", "--target-root", root, "--format", "raw", "--force"], new MemoryStream(stream));
        Assert.True(restore.ExitCode == 0, $"restoring the backup exited {restore.ExitCode}: {restore.StandardError}");
        return Path.Combine(root, "var/lib/libvirt/images", $"{vm.Name}-vda.img");
    }

    /// <summary>A raw copy of the live vda of <paramref name="vm"/> (qemu-img -U: the guest keeps running).</summary>
    public async Task<string> CopyLiveDiskAsync(LabVm vm)
    {
        var copy = Path.Combine(_work, "live.raw");
        await LabHost.RunAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", vm.DiskPath("vda"), copy]);
        return copy;
    }

    /// <summary>The "Filesystem features" dumpe2fs -h lists (needs_recovery: the journal has to be replayed).</summary>
    public static async Task<string[]> FeaturesAsync(string image)
    {
        var header = await LabHost.RunAsync("dumpe2fs", ["-h", image]);
        var line = header.Split('\n').Single(l => l.StartsWith("Filesystem features:", StringComparison.Ordinal));
        return line["Filesystem features:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Whether e2fsck -fn (a forced check that changes nothing) finds the file system clean.</summary>
    public static async Task<(int ExitCode, string Output)> CheckAsync(string image)
    {
        var result = await Cli.Wrap("e2fsck").WithArguments(["-fn", image]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }

    /// <summary>The regular files in the root directory, name → size (debugfs ls -p).</summary>
    public static async Task<IReadOnlyDictionary<string, long>> RootFilesAsync(string image)
    {
        // Lines look like /12/100666/0/0/marker/65536/ (inode, mode, uid, gid, name, size).
        var listing = await LabHost.RunAsync("debugfs", ["-R", "ls -p /", image]);
        return listing.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('/'))
            .Where(f => f.Length >= 7 && f[2].StartsWith("100", StringComparison.Ordinal))
            .ToDictionary(f => f[5], f => long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The content of <paramref name="path"/> in the file system (debugfs cat).</summary>
    public static async Task<byte[]> ReadFileAsync(string image, string path)
    {
        using var content = new MemoryStream();
        await Cli.Wrap("debugfs").WithArguments(["-R", $"cat {path}", image]).WithStandardOutputPipe(PipeTarget.ToStream(content)).ExecuteAsync();
        return content.ToArray();
    }

    /// <summary>The 1 KiB blocks (by index) in which two images of one size differ.</summary>
    public static async Task<IReadOnlyList<long>> DifferingKibBlocksAsync(string a, string b)
    {
        await using var x = File.OpenRead(a);
        await using var y = File.OpenRead(b);
        Assert.Equal(x.Length, y.Length);
        var blocks = new List<long>();
        var bufferA = new byte[1 << 20];
        var bufferB = new byte[1 << 20];
        for (long offset = 0; offset < x.Length; offset += bufferA.Length)
        {
            var n = await x.ReadAtLeastAsync(bufferA, bufferA.Length, throwOnEndOfStream: false);
            await y.ReadExactlyAsync(bufferB.AsMemory(0, n));
            for (var k = 0; k < n; k += 1024)
            {
                var length = Math.Min(1024, n - k);
                if (!bufferA.AsSpan(k, length).SequenceEqual(bufferB.AsSpan(k, length)))
                {
                    blocks.Add((offset + k) / 1024);
                }
            }
        }

        return blocks;
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
