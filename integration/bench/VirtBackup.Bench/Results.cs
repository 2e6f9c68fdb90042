using System.Globalization;
using System.Text;

namespace VirtBackup.Bench;

/// <summary>One line of the results table: a median of ours next to a median of the reference.</summary>
internal sealed record ResultRow(
    string Id,
    string Benchmark,
    string OursLabel,
    Samples Ours,
    string PeerLabel,
    Samples Peer,
    double Ratio,
    string Target,
    bool? Pass,
    IReadOnlyList<string> Notes)
{
    /// <summary>A row whose ratio is our median over the peer's, met at or below <paramref name="limit"/>.</summary>
    public static ResultRow AtMost(string id, string benchmark, string oursLabel, Samples ours, string peerLabel, Samples peer, double limit, IReadOnlyList<string> notes) =>
        Compared(id, benchmark, oursLabel, ours, peerLabel, peer, "<=", limit, notes);

    /// <summary>A row whose ratio is our median over the peer's, met at or above <paramref name="limit"/>.</summary>
    public static ResultRow AtLeast(string id, string benchmark, string oursLabel, Samples ours, string peerLabel, Samples peer, double limit, IReadOnlyList<string> notes) =>
        Compared(id, benchmark, oursLabel, ours, peerLabel, peer, ">=", limit, notes);

    private static ResultRow Compared(string id, string benchmark, string oursLabel, Samples ours, string peerLabel, Samples peer, string relation, double limit, IReadOnlyList<string> notes)
    {
        var ratio = ours.Median / peer.Median;
        var target = string.Create(CultureInfo.InvariantCulture, $"{relation} {limit:F2}");
        return new ResultRow(id, benchmark, oursLabel, ours, peerLabel, peer, ratio, target, relation == "<=" ? ratio <= limit : ratio >= limit, notes);
    }
}

/// <summary>The table every run prints, as Markdown (readable in a terminal and pasteable into RESULTS.md).</summary>
internal static class Results
{
    public static string Table(IReadOnlyList<ResultRow> rows, int runs)
    {
        var text = new StringBuilder();
        text.AppendLine($"| # | benchmark | ours (median of {runs}) | peer (median of {runs}) | ratio | target | result |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            var result = row.Pass switch { true => "PASS", false => "MISS", null => "info" };
            text.AppendLine(
                $"| {row.Id} | {row.Benchmark} | {row.OursLabel}: {Samples.Format(row.Ours.Median)} {row.Ours.Unit} | " +
                $"{row.PeerLabel}: {Samples.Format(row.Peer.Median)} {row.Peer.Unit} | {row.Ratio:F2} | {row.Target} | {result} |");
        }

        text.AppendLine();
        text.AppendLine("Samples and notes:");
        foreach (var row in rows)
        {
            text.AppendLine($"- {row.Id} {row.OursLabel}: {row.Ours}; {row.PeerLabel}: {row.Peer}");
            foreach (var note in row.Notes)
            {
                text.AppendLine($"  - {note}");
            }
        }

        return text.ToString();
    }
}
