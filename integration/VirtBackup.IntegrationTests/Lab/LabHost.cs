namespace VirtBackup.IntegrationTests.Lab;

/// <summary>
/// The lab on this machine: where the repository and its scripts are, and a once-per-run guard that
/// the libvirt daemons are up (integration/lab/start-daemons.sh).
/// </summary>
public static class LabHost
{
    private static readonly Lazy<Task> Daemons = new(() => RunScriptAsync("start-daemons.sh", [], CancellationToken.None));

    /// <summary>The folder holding VirtBackup.Plugin.sln, found by walking up from the test assembly.</summary>
    public static string RepoRoot => RepositoryCheckout.Root;

    /// <summary>integration/lab/NAME.</summary>
    public static string Script(string name) => Path.Combine(RepoRoot, "integration", "lab", name);

    /// <summary>Runs start-daemons.sh once per test run; later callers await the same run.</summary>
    public static Task EnsureDaemonsAsync() => Daemons.Value;

    /// <summary>Runs a lab script with bash and returns its stdout; a non-zero exit is a <see cref="LabException"/>.</summary>
    public static async Task<string> RunScriptAsync(string script, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var result = await Cli.Wrap("bash")
            .WithArguments([Script(script), .. arguments])
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new LabException(
                $"{script} {string.Join(' ', arguments)} exited with {result.ExitCode}: {result.StandardError.Trim()}");
        }

        return result.StandardOutput;
    }

    /// <summary>Runs any tool and returns its stdout; a non-zero exit is a <see cref="LabException"/>.</summary>
    public static async Task<string> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken = default)
    {
        var result = await Cli.Wrap(tool)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new LabException($"{tool} {string.Join(' ', arguments)} exited with {result.ExitCode}: {result.StandardError.Trim()}");
        }

        return result.StandardOutput;
    }

}

/// <summary>A lab script or tool failed; the message carries its stderr.</summary>
public sealed class LabException(string message) : Exception(message);

/// <summary>Lab VM tests run one at a time: the machine has two cores and TCG guests are CPU-bound.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LabCollection
{
    public const string Name = "Lab VMs";
}
