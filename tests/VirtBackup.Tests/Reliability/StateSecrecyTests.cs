namespace VirtBackup.Tests.Reliability;

/// <summary>
/// While a restore runs, the NVRAM and TPM bytes exist only in files nobody but their owner can read (0600), inside
/// a private staging directory (0700) next to their final place or at that final place; at the end no staging is
/// left, whether the restore completes or the stream breaks. The tree is inspected every time the restore reads
/// from its input, that is at every point where it could have written something.
/// </summary>
public class StateSecrecyTests
{
    [Theory(Timeout = 120_000)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Nvram_and_tpm_bytes_are_only_ever_in_0600_files_in_0700_staging_or_their_final_place(bool complete)
    {
        var spec = ChainFixtures.Full();
        var valid = await ChainFixtures.BuildAsync(spec);
        var records = Stream.TarSurgery.Records(valid);
        var stream = complete ? valid : valid[..(int)(records.Last(r => r.Name.StartsWith("disks/vda/0", StringComparison.Ordinal)).ContentOffset + 100)];
        var secrets = new[] { ("NVRAM", spec.Nvram!), ("TPM state", spec.Tpm.Single(t => t.Content.Length > 0).Content) };
        using var tree = new RestoredTree();
        var violations = new List<string>();
        var inspections = 0;
        var input = new InspectingStream(new MemoryStream(stream, writable: false), () =>
        {
            inspections++;
            violations.AddRange(Inspect(tree, secrets));
        });

        var restore = new RestoreRun(null, QemuConf.Defaults, Serilog.Core.Logger.None)
            .RunAsync(new RestoreOptions(null, Format: DiskFormat.Raw, TargetRoot: tree.Root), input, CancellationToken.None);
        if (complete)
        {
            await restore;
        }
        else
        {
            await Assert.ThrowsAsync<StreamFormatException>(() => restore);
        }

        violations.AddRange(Inspect(tree, secrets));
        Assert.True(inspections > 20, $"only {inspections} inspections");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Distinct()));
        Assert.Empty(tree.StagingLeftovers());
        if (complete)
        {
            Assert.Equal("600", Mode(tree.Nvram()));
            Assert.Equal("700", Mode(tree.TpmDirectory()));
            Assert.All(Directory.GetFiles(tree.TpmDirectory()), f => Assert.Equal("600", Mode(f)));
            Assert.Equal("600", Mode(tree.Definition()));
        }
        else
        {
            Assert.Empty(tree.Files());
        }
    }

    /// <summary>Every file below the root that holds a secret: 0600, and in staging (0700) or at its final place.</summary>
    private static IEnumerable<string> Inspect(RestoredTree tree, (string Name, byte[] Content)[] secrets)
    {
        var finals = new[] { tree.Nvram(), tree.TpmDirectory() };
        foreach (var file in Directory.EnumerateFiles(tree.Root, "*", SearchOption.AllDirectories))
        {
            byte[] content;
            try
            {
                content = File.ReadAllBytes(file);
            }
            catch (IOException)
            {
                continue; // renamed away between the listing and the read
            }

            foreach (var (name, secret) in secrets)
            {
                if (content.AsSpan().IndexOf(Needle(secret)) < 0)
                {
                    continue;
                }

                var relative = Path.GetRelativePath(tree.Root, file);
                if (Mode(file) != "600")
                {
                    yield return $"{relative} holds {name} bytes with mode {Mode(file)}";
                }

                var staging = Ancestors(file, tree.Root).FirstOrDefault(d => Path.GetFileName(d).StartsWith(StagingDirectory.Prefix, StringComparison.Ordinal));
                if (staging is not null && Mode(staging) != "700")
                {
                    yield return $"{relative} holds {name} bytes in staging directory {Path.GetRelativePath(tree.Root, staging)} with mode {Mode(staging)}";
                }

                if (staging is null && !finals.Any(f => file == f || file.StartsWith(f + "/", StringComparison.Ordinal)))
                {
                    yield return $"{relative} holds {name} bytes outside staging and outside its final place";
                }
            }
        }
    }

    /// <summary>64 bytes of the secret that occur nowhere else: a window of random-looking bytes (the fixtures also hold text and fill runs).</summary>
    private static ReadOnlySpan<byte> Needle(byte[] secret)
    {
        for (var at = 0; at + 64 <= secret.Length; at += 16)
        {
            if (secret.AsSpan(at, 64).ToArray().Distinct().Count() >= 48)
            {
                return secret.AsSpan(at, 64);
            }
        }

        throw new InvalidOperationException("the secret has no random-looking window");
    }

    private static IEnumerable<string> Ancestors(string path, string root)
    {
        for (var dir = Path.GetDirectoryName(path); dir is not null && dir.Length > root.Length; dir = Path.GetDirectoryName(dir))
        {
            yield return dir;
        }
    }

    private static string Mode(string path) => Convert.ToString((int)File.GetUnixFileMode(path), 8);

    /// <summary>A pipe-like input that calls <paramref name="beforeRead"/> before every read.</summary>
    private sealed class InspectingStream(System.IO.Stream inner, Action beforeRead) : System.IO.Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            beforeRead();
            return inner.Read(buffer, offset, Math.Min(count, 4096));
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            beforeRead();
            return inner.ReadAsync(buffer[..Math.Min(buffer.Length, 4096)], cancellationToken);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
