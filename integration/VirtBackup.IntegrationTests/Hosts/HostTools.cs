using System.Text;

namespace VirtBackup.IntegrationTests.Hosts;

/// <summary>What one run of a host script or tool gave: exit code, stdout (bytes and text), stderr.</summary>
public sealed record ToolResult(int ExitCode, byte[] Output, string StandardError)
{
    public string StandardOutput => Encoding.UTF8.GetString(Output);

    /// <summary>For assertion messages: everything the run said.</summary>
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StandardOutput}\n--- stderr\n{StandardError}";
}

/// <summary>Paths of the host glue in this repository, and a runner for its scripts and tools.</summary>
public static class HostTools
{
    private static readonly Lazy<Task> Installation = new(InstallAsync);

    public static string RepositoryRoot => RepositoryCheckout.Root;

    public static string HostsDirectory { get; } = Path.Combine(RepositoryRoot, "integration", "hosts");

    public static string Contrib(params string[] parts) => Path.Combine([RepositoryRoot, "contrib", .. parts]);

    /// <summary>
    /// Runs integration/hosts/install.sh once per test run (a no-op when everything is installed): the
    /// tests never skip for a missing restic or Bacula, they install it or fail.
    /// </summary>
    public static Task EnsureInstalledAsync() => Installation.Value;

    public static async Task<ToolResult> RunAsync(
        string executable,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? standardInput = null,
        CancellationToken cancellationToken = default)
    {
        var stdout = new MemoryStream();
        var stderr = new StringBuilder();
        var command = CliWrap.Cli.Wrap(executable)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .WithStandardInputPipe(standardInput is null ? PipeSource.Null : PipeSource.FromString(standardInput))
            .WithStandardOutputPipe(PipeTarget.ToStream(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr));
        if (environment is not null)
        {
            command = command.WithEnvironmentVariables(environment);
        }

        var result = await command.ExecuteAsync(cancellationToken);
        return new ToolResult(result.ExitCode, stdout.ToArray(), stderr.ToString());
    }

    /// <summary>Runs and asserts exit code 0, returning the result.</summary>
    public static async Task<ToolResult> RunCheckedAsync(
        string executable,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? standardInput = null)
    {
        var result = await RunAsync(executable, arguments, environment, standardInput);
        Assert.True(result.ExitCode == 0, $"{executable} {string.Join(' ', arguments)}: {result}");
        return result;
    }

    private static async Task InstallAsync()
    {
        var result = await RunAsync("bash", [Path.Combine(HostsDirectory, "install.sh")]);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"integration/hosts/install.sh failed: {result}");
        }
    }

}

/// <summary>A fresh directory under /tmp for one test, removed afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("vbt-hosts-").FullName;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A daemon may still hold a file for a moment; /tmp is cleaned anyway.
        }
    }
}
