namespace VirtBackup.IntegrationTests.Consistency;

/// <summary>
/// A secret sealed to the TPM under PCR policies, as a disk-encryption tool seals its key: the oracle guest seals one
/// secret at its first boot to PCRs 0+7 (firmware, Secure Boot state) and to 0+1+7 (also the platform configuration),
/// keeps the sealed blobs on its disk, and unseals them at every later boot. A restore brings both back, under a new
/// name (new UUID) and in place, and even with a fresh NVRAM (this guest boots its kernel directly, without Secure Boot);
/// losing the TPM state loses both, and another firmware build (what a host's OVMF upgrade does) changes PCR 0. CI checks
/// the restores under a new name and in place and the loss without TPM state; <c>VIRTBACKUP_LONG_TESTS=1</c> adds the
/// fresh NVRAM and the other firmware build.
/// </summary>
[Collection(LabCollection.Name)]
public sealed class SealedSecretTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vbt-sealed-").FullName;

    [Fact(Timeout = 1_200_000)]
    public async Task A_secret_sealed_to_pcrs_unseals_after_a_restore_as_a_new_vm_and_in_place_but_not_without_the_tpm_state()
    {
        var lab = new OracleLab(_work);
        await using var vm = await LabVm.CreateAsync(disks: 2, diskSize: "64M", oracle: true);
        var secret = await OracleConsole.WaitForSealedAsync(vm.ConsoleLogPath, OracleLab.BootTimeout);
        var full = await lab.BackupAsync(vm, "full");
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "destroy", vm.Name]);

        // Four copies under new names: as restored; with the NVRAM reset to OVMF's template; with no TPM state; on another
        // build of the same firmware (OVMF's Secure Boot capable build, Secure Boot not enrolled).
        // CI boots the first and the third (one round of two boots); VIRTBACKUP_LONG_TESTS=1 boots all four.
        var variants = new (string Suffix, Func<RestoredLabDomain, Task> Change, Func<string, string>? Definition)[]
        {
            ("a", _ => Task.CompletedTask, null),
            ("t", async copy => Directory.Delete(await OracleLab.TpmStateDirectoryAsync(copy.Name), recursive: true), null),
            ("v", copy => File.WriteAllBytesAsync(copy.NvramPath, File.ReadAllBytes("/usr/share/OVMF/OVMF_VARS_4M.fd")), null),
            ("f", _ => Task.CompletedTask, OtherFirmware),
        };
        var copies = await OracleLab.TwoAtATimeAsync(variants.Take(LongTests.Enabled ? 4 : 2).Select(c => (Func<Task<(string Pcr07, string Pcr017)>>)(async () =>
        {
            var name = $"{vm.Name}-{c.Suffix}";
            await using var copy = new RestoredLabDomain(name);
            await OracleLab.RestoreAsync(full, "--as", name);
            await c.Change(copy);
            var unsealed = await OracleConsole.WaitForUnsealAsync(await OracleLab.StartCopyAsync(vm, name, c.Definition), OracleLab.BootTimeout);
            await OracleLab.DestroyAsync(name);
            return unsealed;
        })));
        // In place: the same name and UUID, over the shut-off original.
        await OracleLab.RestoreAsync(full, "--force");
        File.Delete(vm.ConsoleLogPath);
        await LabHost.RunAsync("virsh", ["-q", "-c", "qemu:///system", "start", vm.Name]);
        var inPlace = await OracleConsole.WaitForUnsealAsync(vm.ConsoleLogPath, OracleLab.BootTimeout);

        var (restored, noTpm) = (copies[0], copies[1]);
        output.WriteLine($"sealed {secret}; --as: {restored}; in place: {inPlace}; --as without TPM state: {noTpm}");
        Assert.Equal((secret, secret), restored);
        Assert.Equal((secret, secret), inPlace);
        Assert.StartsWith("refused:", noTpm.Pcr07, StringComparison.Ordinal);
        Assert.StartsWith("refused:", noTpm.Pcr017, StringComparison.Ordinal);
        if (LongTests.Enabled)
        {
            var (freshNvram, otherFirmware) = (copies[2], copies[3]);
            output.WriteLine($"--as with a fresh NVRAM: {freshNvram}; --as on another firmware build: {otherFirmware}");
            Assert.Equal((secret, secret), freshNvram);
            Assert.StartsWith("refused:", otherFirmware.Pcr07, StringComparison.Ordinal);
            Assert.StartsWith("refused:", otherFirmware.Pcr017, StringComparison.Ordinal);
        }
    }

    /// <summary>The definition on OVMF's Secure Boot capable build (it needs SMM), with the same NVRAM and no keys enrolled.</summary>
    private static string OtherFirmware(string definition) => definition
        .Replace("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd", "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", StringComparison.Ordinal)
        .Replace("<features>", "<features><smm state='on'/>", StringComparison.Ordinal);

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
