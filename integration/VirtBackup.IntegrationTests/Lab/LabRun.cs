using System.Globalization;

namespace VirtBackup.IntegrationTests.Lab;

/// <summary>
/// One run of a disk's --fill layout (integration/lab/domain.sh layout): <see cref="Pattern"/> bytes,
/// or zeros written as zero clusters when <see cref="Pattern"/> is null. Everything between runs is a hole.
/// </summary>
public sealed record LabRun(long Offset, long Length, byte? Pattern)
{
    public bool IsZero => Pattern is null;

    /// <summary>Parses `data OFFSET LENGTH 0xPP` and `zero OFFSET LENGTH` lines.</summary>
    public static IReadOnlyList<LabRun> ParseLayout(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' '))
            .Select(f => new LabRun(
                long.Parse(f[1], CultureInfo.InvariantCulture),
                long.Parse(f[2], CultureInfo.InvariantCulture),
                f[0] == "data" ? Convert.ToByte(f[3], 16) : null))
            .ToArray();
}
