namespace VirtBackup.Bench;

/// <summary>Repeated measurements of one quantity.</summary>
internal sealed class Samples(string unit)
{
    private readonly List<double> _values = [];

    public string Unit { get; } = unit;

    public IReadOnlyList<double> Values => _values;

    public void Add(double value) => _values.Add(value);

    public double Median
    {
        get
        {
            if (_values.Count == 0)
            {
                return double.NaN;
            }

            var sorted = _values.Order().ToList();
            var mid = sorted.Count / 2;
            return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        }
    }

    public override string ToString() => $"{string.Join(" ", _values.Select(v => Format(v)))} {Unit}";

    public static string Format(double value) => value switch
    {
        double.NaN => "-",
        >= 100 => value.ToString("F0"),
        >= 10 => value.ToString("F1"),
        _ => value.ToString("F2"),
    };
}
