using System.Diagnostics;

namespace VirtBackup.IntegrationTests.Reliability;

/// <summary>
/// One column of the fault matrix (one fault, every phase): runs each cell, keeps going after a failed cell,
/// prints one line per cell and appends the column to <c>$VIRTBACKUP_MATRIX_FILE</c> (default
/// /tmp/virtbackup-fault-matrix.md) for docs/RELIABILITY.md, then fails if any cell failed.
/// </summary>
internal sealed class FaultMatrix(string fault, ITestOutputHelper output)
{
    private readonly List<string> _rows = [];
    private readonly List<string> _failures = [];

    public async Task CellAsync(BackupPhase phase, Func<Task<string>> cell)
    {
        var elapsed = Stopwatch.StartNew();
        string row;
        try
        {
            row = $"pass: {await cell()}";
        }
        catch (Exception e)
        {
            row = $"FAIL: {e.Message.Split('\n')[0]}";
            _failures.Add($"{fault} at {BackupPhases.Name(phase)}: {e}");
        }

        Add(phase, $"{row} ({elapsed.Elapsed.TotalSeconds:F1} s)");
    }

    public void NotApplicable(BackupPhase phase, string reason) => Add(phase, $"N/A: {reason}");

    public void Complete()
    {
        var file = Environment.GetEnvironmentVariable("VIRTBACKUP_MATRIX_FILE") ?? Path.Combine(Path.GetTempPath(), "virtbackup-fault-matrix.md");
        File.AppendAllLines(file, _rows);
        Assert.True(_failures.Count == 0, $"{_failures.Count} cells failed:\n{string.Join("\n\n", _failures)}");
    }

    private void Add(BackupPhase phase, string result)
    {
        var row = $"| {fault} | {BackupPhases.Name(phase)} | {result.Replace('|', '/')} |";
        _rows.Add(row);
        output.WriteLine(row);
    }
}
