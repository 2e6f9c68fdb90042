using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VirtBackup.IntegrationTests.Lab;

/// <summary>The three values a restored oracle guest read at boot, before its workload changed anything.</summary>
public sealed record OracleBoot(long Tpm, long Nvram, long Disk)
{
    /// <summary>
    /// The workload moves the TPM counter, then the UEFI variable, then the disk block, each to the same value: any one
    /// instant of the guest has TPM &gt;= NVRAM &gt;= disk &gt;= TPM - 1.
    /// </summary>
    public bool IsOneInstant => Tpm >= Nvram && Nvram >= Disk && Disk >= Tpm - 1;

    /// <summary>Counter steps between the TPM state and the disk (0 or 1 at one instant).</summary>
    public long Spread => Tpm - Disk;

    public override string ToString() => $"tpm={Tpm} nvram={Nvram} disk={Disk}";
}

/// <summary>
/// The serial console of an oracle guest (integration/lab/oracle/oracle.c, domain.sh create --oracle): "ORACLE ..."
/// lines, read from the file libvirt logs the console to.
/// </summary>
public static partial class OracleConsole
{
    /// <summary>The last "ORACLE boot" line in <paramref name="consoleLog"/>, once there is one; throws on "ORACLE stop" or after <paramref name="timeout"/>.</summary>
    public static async Task<OracleBoot> WaitForBootAsync(string consoleLog, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var line = await WaitForLineAsync(consoleLog, BootLine(), timeout, cancellationToken);
        var match = BootLine().Match(line);
        return new OracleBoot(Value(match, "tpm"), Value(match, "nvram"), Value(match, "disk"));
    }

    /// <summary>
    /// Waits until the workload runs and has taken <paramref name="steps"/> steps since it reported "run" (a "rate" line
    /// at or past that count); returns the counter value that line names.
    /// </summary>
    public static async Task<long> WaitForStepsAsync(string consoleLog, long steps, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var text = await ReadAsync(consoleLog, cancellationToken);
            ThrowOnStop(consoleLog, text);
            var rates = RateLine().Matches(text);
            if (rates.Count > 0 && Value(rates[^1], "steps") >= steps)
            {
                return Value(rates[^1], "value");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"the oracle in {consoleLog} did not reach {steps} steps within {timeout.TotalSeconds} s; console tail:\n{Tail(text)}");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    /// <summary>The step count and counter value of the last "rate" line (0, 0 before the first).</summary>
    public static async Task<(long Steps, long Value)> LatestAsync(string consoleLog)
    {
        var rates = RateLine().Matches(await ReadAsync(consoleLog, CancellationToken.None));
        return rates.Count == 0 ? (0, 0) : (Value(rates[^1], "steps"), Value(rates[^1], "value"));
    }

    /// <summary>The secret the first boot sealed ("ORACLE sealed secret=S").</summary>
    public static async Task<string> WaitForSealedAsync(string consoleLog, TimeSpan timeout) =>
        SealedLine().Match(await WaitForLineAsync(consoleLog, SealedLine(), timeout, CancellationToken.None)).Groups["secret"].Value;

    /// <summary>
    /// What a later boot unsealed ("ORACLE unseal pcr0+7=S|refused:RC pcr0+1+7=S|refused:RC"): the secret under the policy
    /// of PCRs 0 and 7, and under 0, 1 and 7; "refused:0x..." with the TPM's response code when it would not unseal.
    /// </summary>
    public static async Task<(string Pcr07, string Pcr017)> WaitForUnsealAsync(string consoleLog, TimeSpan timeout)
    {
        var match = UnsealLine().Match(await WaitForLineAsync(consoleLog, UnsealLine(), timeout, CancellationToken.None));
        return (match.Groups["pcr07"].Value, match.Groups["pcr017"].Value);
    }

    /// <summary>The rates (steps per second) the workload reported so far.</summary>
    public static async Task<IReadOnlyList<double>> RatesAsync(string consoleLog) =>
        [.. RateLine().Matches(await ReadAsync(consoleLog, CancellationToken.None))
            .Select(m => double.Parse(m.Groups["per_s"].Value, CultureInfo.InvariantCulture))];

    private static async Task<string> WaitForLineAsync(string consoleLog, Regex pattern, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var text = await ReadAsync(consoleLog, cancellationToken);
            var matches = pattern.Matches(text);
            if (matches.Count > 0)
            {
                return matches[^1].Value;
            }

            ThrowOnStop(consoleLog, text);
            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"no '{pattern}' in {consoleLog} within {timeout.TotalSeconds} s; console tail:\n{Tail(text)}");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    private static void ThrowOnStop(string consoleLog, string text)
    {
        var stop = StopLine().Match(text);
        if (stop.Success)
        {
            throw new LabException($"the oracle in {consoleLog} stopped: {stop.Value}");
        }
    }

    private static async Task<string> ReadAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            // QEMU keeps the file open for writing: share it.
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(file, Encoding.Latin1);
            return await reader.ReadToEndAsync(cancellationToken);
        }
        catch (FileNotFoundException)
        {
            return "";
        }
    }

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(15));

    private static long Value(Match match, string group) => long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"ORACLE boot tpm=(?<tpm>\d+) nvram=(?<nvram>\d+) disk=(?<disk>\d+)")]
    private static partial Regex BootLine();

    [GeneratedRegex(@"ORACLE rate steps=(?<steps>\d+) per_s=(?<per_s>[0-9.]+) value=(?<value>\d+)")]
    private static partial Regex RateLine();

    [GeneratedRegex(@"ORACLE sealed secret=(?<secret>\S+)")]
    private static partial Regex SealedLine();

    [GeneratedRegex(@"ORACLE unseal pcr0\+7=(?<pcr07>\S+) pcr0\+1\+7=(?<pcr017>\S+)")]
    private static partial Regex UnsealLine();

    [GeneratedRegex(@"ORACLE stop [^\r\n]*")]
    private static partial Regex StopLine();
}
