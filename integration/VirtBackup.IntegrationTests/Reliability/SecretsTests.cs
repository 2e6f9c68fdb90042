using System.Text;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// The VM's secrets (TPM state, NVRAM, a VNC password in the domain XML) go into the stream and nowhere else: not
/// into the debug log of a backup or a restore, not into any file a backup writes along the way.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class SecretsTests
{
    private const string VncPassword = "Vb7!s3Cq";

    [Fact(Timeout = 180_000)]
    public async Task Backup_and_restore_at_debug_level_log_no_tpm_or_nvram_bytes_and_no_domain_xml_secret()
    {
        await using var lab = await FaultLab.CreateAsync();
        await AddVncPasswordAsync(lab.Vm.Name);
        var tpm = await File.ReadAllBytesAsync(Path.Combine(lab.Vm.TpmStateDirectory, "tpm2-00.permall"));

        // Held at streaming: NVRAM and TPM were read and handed to the stream; no file of the run may hold them.
        using var backup = await lab.StartAtAsync(BackupPhase.Streaming, extra: ["--log-level", "debug"]);
        var written = FilesWrittenByTheRun(lab).Where(f => Holds(f, tpm.AsSpan(0, 64))).ToList();
        backup.Continue();
        var outcome = await backup.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(outcome.ExitCode == 0, outcome.StandardError);
        Assert.Empty(written);

        var stream = await ParsedStream.ReadAsync(outcome.StandardOutput);
        Assert.Contains($"passwd='{VncPassword}'", stream.DomainXml); // the secret is really in play
        var nvram = stream.Nvram!;
        var restore = await VirtBackupCli.RunAsync(
            ["restore", "--target-root", lab.RestoreRoot, "--format", "raw", "--log-level", "debug"], new MemoryStream(outcome.StandardOutput));
        Assert.True(restore.ExitCode == 0, restore.StandardError);

        foreach (var (what, log) in new[] { ("backup", outcome.StandardError), ("restore", restore.StandardError) })
        {
            Assert.True(log.Contains(" DBG ", StringComparison.Ordinal) || what == "restore", $"{what}: no debug lines at all:\n{log}");
            Assert.DoesNotContain(VncPassword, log);
            Assert.DoesNotContain("<domain", log);
            Assert.DoesNotContain("<graphics", log);
            foreach (var (name, secret) in new[] { ("TPM state", tpm), ("NVRAM", nvram) })
            {
                foreach (var slice in Slices(secret))
                {
                    foreach (var encoded in Encodings(slice))
                    {
                        Assert.False(log.Contains(encoded, StringComparison.Ordinal), $"{what} log holds {name} bytes as '{encoded}'");
                    }
                }
            }
        }
    }

    private static async Task AddVncPasswordAsync(string name)
    {
        var xml = await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "dumpxml", "--inactive", "--security-info", name]);
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, xml.Replace("</devices>", $"<graphics type='vnc' port='-1' autoport='yes' passwd='{VncPassword}'/></devices>", StringComparison.Ordinal));
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "define", file]);
        File.Delete(file);
        var plain = await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "dumpxml", "--inactive", name]);
        Assert.DoesNotContain(VncPassword, plain); // libvirt hides it without the secure flag
    }

    /// <summary>Every regular file in the places a backup writes to: its state directory, job directories, scratch directory, /tmp.</summary>
    private static IEnumerable<string> FilesWrittenByTheRun(FaultLab lab)
    {
        var since = DateTime.UtcNow.AddMinutes(-2);
        foreach (var root in new[] { lab.StateDirectory, Core.Hosts.Local.JobRuntimeDirectory.Root, lab.ScratchDirectory, Path.GetTempPath() })
        {
            var options = new EnumerationOptions { RecurseSubdirectories = root != Path.GetTempPath(), IgnoreInaccessible = true, AttributesToSkip = 0 };
            foreach (var file in Directory.EnumerateFiles(root, "*", options))
            {
                var info = new FileInfo(file);
                // Sockets and FIFOs have length 0 (and opening a FIFO would block).
                if (info.LinkTarget is null && info.LastWriteTimeUtc >= since && info.Length >= 64 && info.Length < 64L << 20 && !file.EndsWith(".qcow2", StringComparison.Ordinal))
                {
                    yield return file;
                }
            }
        }
    }

    private static bool Holds(string file, ReadOnlySpan<byte> needle)
    {
        byte[] content;
        try
        {
            // Not File.ReadAllBytes: .NET takes a shared flock, which the run's domain lock refuses.
            // One owner of the descriptor: wrapping DangerousGetHandle in a second owning handle closed the fd twice
            // (the abandoned handle's finalizer closed whatever file had reused the number meanwhile).
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            content = new byte[RandomAccess.GetLength(handle)];
            var read = 0;
            while (read < content.Length)
            {
                var n = RandomAccess.Read(handle, content.AsSpan(read), read);
                if (n == 0)
                {
                    Array.Resize(ref content, read);
                    break;
                }

                read += n;
            }
        }
        catch (IOException)
        {
            // The run's lock (flock-ed) or a socket: neither holds file content.
            return false;
        }

        return content.AsSpan().IndexOf(needle) >= 0;
    }

    /// <summary>32-byte windows of the secret that are not one repeated byte (OVMF pads its variable store with 0xff).</summary>
    private static IEnumerable<byte[]> Slices(byte[] secret)
    {
        for (var at = 0; at + 32 <= secret.Length; at += 4096)
        {
            var slice = secret.AsSpan(at, 32);
            if (slice.ContainsAnyExcept(slice[0]))
            {
                yield return slice.ToArray();
            }
        }
    }

    private static IEnumerable<string> Encodings(byte[] slice)
    {
        yield return Convert.ToHexStringLower(slice);
        yield return Convert.ToHexString(slice);
        yield return Convert.ToBase64String(slice)[..40];
        yield return string.Join(", ", slice.Take(12));
        yield return Encoding.Latin1.GetString(slice);
    }
}
