using System.Text.RegularExpressions;
using VirtBackup.CliApp;

namespace VirtBackup.Tests.Docs;

/// <summary>README.md's exit-code table is the same list `--help` prints (ExitCodes.Documented), row by row.</summary>
public partial class ReadmeExitCodesTests
{
    [Fact]
    public void The_readme_exit_code_table_has_exactly_the_rows_help_prints()
    {
        var rows = ReadmeRows(File.ReadAllText(Path.Combine(RepositoryCheckout.Root, "README.md")));

        // Row by row, so that a failure shows the whole differing row.
        for (var i = 0; i < Math.Min(rows.Count, ExitCodes.Documented.Count); i++)
        {
            Assert.Equal($"| {ExitCodes.Documented[i].Code} | {ExitCodes.Documented[i].Meaning} |", $"| {rows[i].Code} | {rows[i].Meaning} |");
        }

        Assert.Equal(ExitCodes.Documented.Count, rows.Count);
    }

    [Fact]
    public void The_table_parser_reads_the_rows_between_the_exit_codes_heading_and_the_next_blank_line()
    {
        var rows = ReadmeRows("""
            ## Other
            | 9 | not this table |

            ### Exit codes

            | code | meaning |
            | --- | --- |
            | 0 | fine |
            | 4 | refused (a, b) |

            | 5 | after the table |
            """);

        Assert.Equal([(0, "fine"), (4, "refused (a, b)")], rows);
    }

    private static List<(int Code, string Meaning)> ReadmeRows(string readme)
    {
        var lines = readme.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var heading = lines.FindIndex(l => l.Trim() == "### Exit codes");
        Assert.True(heading >= 0, "README.md has no '### Exit codes' section");
        var table = lines.Skip(heading + 1).SkipWhile(l => l.Trim().Length == 0).TakeWhile(l => l.Trim().Length > 0).ToList();
        Assert.True(table.Count >= 2 && table[0].Trim() == "| code | meaning |", $"the exit-code table starts with '{table.FirstOrDefault()}'");
        return table.Skip(2).Select(line =>
        {
            var match = Row().Match(line.Trim());
            Assert.True(match.Success, $"'{line}' is not a '| code | meaning |' row");
            return (int.Parse(match.Groups["code"].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups["meaning"].Value);
        }).ToList();
    }

    [GeneratedRegex(@"^\| (?<code>[0-9]+) \| (?<meaning>.+) \|$")]
    private static partial Regex Row();
}
