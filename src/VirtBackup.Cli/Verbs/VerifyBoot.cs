using System.Text.Json;
using System.Text.RegularExpressions;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Recovery.Boot;

namespace VirtBackup.CliApp.Verbs;

/// <summary><c>verify --boot</c>: wires <see cref="BootCheck"/> to the command line, the report to stderr (and JSON to stdout).</summary>
internal static class VerifyBoot
{
    public const int DefaultTimeoutSeconds = 180;

    public static async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        if (options.Operands.Count == 0)
        {
            throw new UsageException("verify --boot takes the chain's stream files: the full first, then its incrementals in order");
        }

        var timeout = TimeSpan.FromSeconds(options.IntValue("timeout", DefaultTimeoutSeconds, 1, 86400));
        Regex? expect;
        try
        {
            expect = options.Value("expect-console") is { } pattern ? new Regex(pattern, RegexOptions.None, TimeSpan.FromSeconds(1)) : null;
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--expect-console is not a regular expression: {e.Message}");
        }

        var screenshot = options.Value("screenshot") is { } png ? Path.GetFullPath(png) : null;
        using var libvirt = LibvirtConnection.Open(BootVerb.LocalUri(options, context));
        var boot = new BootRun(libvirt, QemuConf.Load(), context.Log, BootVerb.ServeCommand());
        var report = await new BootCheck(libvirt, boot, context.Log).RunAsync(options.Operands, new BootCheckOptions(timeout, expect, screenshot), cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        if (report.Passed)
        {
            context.Log.Information("verify --boot passed: {Source} at {Checkpoint} came up as {Name} in {Boot:F1} s (checked for {Elapsed:F1} s): running, TPM {Tpm}, agent {Agent}, console {Console}{Screenshot}",
                report.Source, report.Checkpoint ?? "copy", report.Name, report.BootSeconds, report.ElapsedSeconds,
                Say(report.TpmAccepted, "accepted"), Say(report.AgentAnswered, "answered"), Say(report.ConsoleMatched, "matched"),
                report.Screenshot is null ? "" : $", screenshot {report.Screenshot}");
        }
        else
        {
            context.Log.Error("verify --boot FAILED: {Failure}", report.Failure);
        }

        if (options.Flag("json"))
        {
            WriteJson(context.StandardOutput, report);
        }

        return report.Passed ? ExitCodes.Success : ExitCodes.BootFailed;
    }

    private static string Say(bool? value, string yes) => value switch { null => "n/a", true => yes, false => "no" };

    private static void WriteJson(Stream output, BootCheckReport report)
    {
        using (var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteBoolean("passed", report.Passed);
            json.WriteString("failure", report.Failure);
            json.WriteString("name", report.Name);
            json.WriteString("source", report.Source);
            json.WriteString("checkpoint", report.Checkpoint);
            json.WriteNumber("bootSeconds", Math.Round(report.BootSeconds, 3));
            json.WriteNumber("elapsedSeconds", Math.Round(report.ElapsedSeconds, 3));
            json.WriteBoolean("running", report.DomainRunning);
            WriteTriState(json, "tpmAccepted", report.TpmAccepted);
            WriteTriState(json, "agentAnswered", report.AgentAnswered);
            WriteTriState(json, "consoleMatched", report.ConsoleMatched);
            json.WriteString("screenshot", report.Screenshot);
            json.WriteEndObject();
        }

        output.WriteByte((byte)'\n');
        output.Flush();
    }

    private static void WriteTriState(Utf8JsonWriter json, string name, bool? value)
    {
        if (value is { } v)
        {
            json.WriteBoolean(name, v);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
