using System.Diagnostics;
using System.Globalization;
using CliWrap;

namespace VirtBackup.Bench;

/// <summary>What one run of an external command took and gave.</summary>
/// <param name="Seconds">Wall time, from start to exit, as the harness saw it.</param>
/// <param name="MaxRssKiB">Peak resident set size of the command (GNU time's %M).</param>
/// <param name="StdoutBytes">Bytes the command wrote to stdout (read and discarded, like `| wc -c`).</param>
/// <param name="StdoutHead">The first bytes of stdout (up to the harness's head size).</param>
/// <param name="CpuSeconds">User plus system CPU of the command and the children it waited for (GNU time's %U + %S).</param>
internal sealed record ToolRun(double Seconds, long MaxRssKiB, long StdoutBytes, byte[] StdoutHead, string StandardError, double CpuSeconds);

/// <summary>Runs measured commands: each under /usr/bin/time (for the peak RSS), stdout counted and dropped.</summary>
internal sealed class Tool(string workDirectory)
{
    private const int HeadSize = 1024 * 1024;

    /// <param name="stdinFile">A file the command reads as its stdin (a redirection, like <c>&lt; FILE</c>: no pipe through the harness).</param>
    public async Task<ToolRun> RunAsync(string program, IReadOnlyList<string> arguments, string? workingDirectory = null, string? stdinFile = null)
    {
        var timeFile = Path.Combine(workDirectory, "time.out");
        var head = new MemoryStream();
        long bytes = 0;
        var stdout = PipeTarget.Create(async (stream, cancellationToken) =>
        {
            var buffer = new byte[1024 * 1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (head.Length < HeadSize)
                {
                    head.Write(buffer, 0, (int)Math.Min(n, HeadSize - head.Length));
                }

                bytes += n;
            }
        });
        var stderr = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        var result = await Cli.Wrap("/usr/bin/time")
            .WithArguments(["-f", "%M %U %S", "-o", timeFile, .. Redirected(stdinFile), program, .. arguments])
            .WithWorkingDirectory(workingDirectory ?? workDirectory)
            .WithStandardOutputPipe(stdout)
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync();
        var seconds = clock.Elapsed.TotalSeconds;
        if (result.ExitCode != 0)
        {
            throw new BenchException($"{program} {string.Join(' ', arguments)} exited with {result.ExitCode}:\n{Tail(stderr.ToString())}");
        }

        var fields = File.ReadAllLines(timeFile).Last(l => l.Length > 0).Trim().Split(' ');
        var cpu = double.Parse(fields[1], CultureInfo.InvariantCulture) + double.Parse(fields[2], CultureInfo.InvariantCulture);
        return new ToolRun(seconds, long.Parse(fields[0], CultureInfo.InvariantCulture), bytes, head.ToArray(), stderr.ToString(), cpu);
    }

    /// <summary>Runs a helper command that is not measured, its stdout into <paramref name="stdoutFile"/>.</summary>
    public static Task ToFileAsync(string stdoutFile, string program, params string[] arguments) =>
        RunHelperAsync(PipeTarget.ToFile(stdoutFile), program, arguments);

    /// <summary>Runs a helper command that is not measured; returns its stdout.</summary>
    public static async Task<string> HelperAsync(string program, params string[] arguments)
    {
        var stdout = new System.Text.StringBuilder();
        await RunHelperAsync(PipeTarget.ToStringBuilder(stdout), program, arguments);
        return stdout.ToString();
    }

    private static async Task RunHelperAsync(PipeTarget stdout, string program, string[] arguments)
    {
        var stderr = new System.Text.StringBuilder();
        var result = await Cli.Wrap(program)
            .WithArguments(arguments)
            .WithStandardOutputPipe(stdout)
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync();
        if (result.ExitCode != 0)
        {
            throw new BenchException($"{program} {string.Join(' ', arguments)} exited with {result.ExitCode}:\n{Tail(stderr.ToString())}");
        }
    }

    /// <summary>The words before the program that make the shell (which execs it) redirect its stdin from a file.</summary>
    private static string[] Redirected(string? stdinFile) =>
        stdinFile is null ? [] : ["/bin/sh", "-c", "exec \"$@\" <\"$0\"", stdinFile];

    private static string Tail(string text)
    {
        var lines = text.TrimEnd().Split('\n');
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 8)));
    }
}

/// <summary>A benchmark could not run (a tool failed, the lab is not as expected).</summary>
internal sealed class BenchException(string message) : Exception(message);
