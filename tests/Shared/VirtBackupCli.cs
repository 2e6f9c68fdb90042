using System.Text;
using CliWrap;

namespace VirtBackup.Testing;

/// <summary>What one run of the real <c>virtbackup</c> executable produced.</summary>
public sealed record CliResult(int ExitCode, byte[] StandardOutput, string StandardError);

/// <summary>
/// Runs the <c>virtbackup</c> apphost that the build copies next to the test assembly (or, when
/// <c>VIRTBACKUP_TEST_EXECUTABLE</c> names one, that executable: the Native AOT publish, as it ships), the way a
/// backup host would: arguments, optional stdin, stdout captured as bytes, stderr as text.
/// </summary>
public static class VirtBackupCli
{
    public static string ExecutablePath { get; } =
        Environment.GetEnvironmentVariable("VIRTBACKUP_TEST_EXECUTABLE") is { Length: > 0 } published
            ? published
            : Path.Combine(AppContext.BaseDirectory, "virtbackup");

    public static Command Command(params string[] args) =>
        CliWrap.Cli.Wrap(ExecutablePath).WithArguments(args).WithValidation(CommandResultValidation.None);

    public static async Task<CliResult> RunAsync(
        IReadOnlyList<string> args,
        Stream? stdin = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        CancellationToken cancellationToken = default)
    {
        var stdout = new MemoryStream();
        var stderr = new StringBuilder();
        var command = Command([.. args])
            .WithStandardOutputPipe(PipeTarget.ToStream(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr));
        if (stdin is not null)
        {
            command = command.WithStandardInputPipe(PipeSource.FromStream(stdin));
        }

        if (environment is not null)
        {
            command = command.WithEnvironmentVariables(environment);
        }

        var result = await command.ExecuteAsync(cancellationToken);
        return new CliResult(result.ExitCode, stdout.ToArray(), stderr.ToString());
    }
}
