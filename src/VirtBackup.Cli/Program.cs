using Serilog;
using Serilog.Core;
using Serilog.Events;
using VirtBackup.CliApp;
using VirtBackup.CliApp.Verbs;
using VirtBackup.Core.Platform;

var verbs = VerbCatalog.All;
var levelSwitch = new LoggingLevelSwitch(LogEventLevel.Information);
await using var log = new LoggerConfiguration()
    .MinimumLevel.ControlledBy(levelSwitch)
    .WriteTo.Console(
        outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}",
        standardErrorFromLevel: LogEventLevel.Verbose)
    .CreateLogger();

if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
{
    Console.Error.Write(Help.Overview(verbs));
    return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Success;
}

if (args[0] == "--version")
{
    Console.Error.WriteLine($"virtbackup {typeof(ExitCodes).Assembly.GetName().Version}");
    return ExitCodes.Success;
}

var verb = verbs.FirstOrDefault(v => v.Name == args[0]);
if (verb is null)
{
    Console.Error.WriteLine($"virtbackup: unknown verb '{args[0]}'");
    Console.Error.Write(Help.Overview(verbs));
    return ExitCodes.Usage;
}

ParsedOptions options;
try
{
    options = CommandLine.Parse(verb.Name, [.. verb.Options, .. GlobalOptions.Specs], args[1..]);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"virtbackup {verb.Name}: {e.Message}");
    Console.Error.Write(Help.ForVerb(verb));
    return ExitCodes.Usage;
}

if (options.Flag("help"))
{
    Console.Error.Write(Help.ForVerb(verb));
    return ExitCodes.Success;
}

levelSwitch.MinimumLevel = GlobalOptions.LogLevel(options);
using var cancellation = new CancellationTokenSource();
using var signals = new SignalHandling(cancellation, log);
// Not Console.OpenStandardOutput(): .NET's console stream pretends a write to a closed pipe (EPIPE)
// succeeded, which would turn a consumer that went away into a "complete" backup. Not a FileStream either: on a
// regular file it reads and writes with pread/pwrite at a position of its own, so `( a; b ) > file` kept only one
// stream and `{ a; b; } < file` could not read two in turn. Plain read(2)/write(2) at the shared offset, which
// report EPIPE as an IOException (.NET ignores SIGPIPE).
// Both are interruptible: a signal ends a read or write blocked on a stalled peer, so the cleanup runs.
await using var standardInput = new InterruptibleStream(new FileDescriptorStream(0, FileAccess.Read, "stdin"), cancellation.Token);
var stdout = new FileDescriptorStream(1, FileAccess.Write, "stdout");
await using var standardOutput = new InterruptibleStream(stdout, cancellation.Token);
var context = new VerbContext(
    standardInput,
    standardOutput,
    !Console.IsOutputRedirected,
    !Console.IsInputRedirected,
    !Console.IsErrorRedirected,
    log,
    Environment.GetEnvironmentVariable)
{
    OutputIsClosed = stdout.ClosedAtStart,
};
try
{
    return await verb.RunAsync(options, context, cancellation.Token);
}
catch (Exception e)
{
    var code = ExitCodes.For(e);
    if (e is OperationCanceledException)
    {
        log.Error("virtbackup {Verb} was interrupted by a signal; its cleanup has run", verb.Name);
    }
    else if (code == ExitCodes.InternalError)
    {
        log.Fatal(e, "virtbackup {Verb} failed unexpectedly", verb.Name);
    }
    else if (code == ExitCodes.Interrupted)
    {
        log.Error("virtbackup {Verb} interrupted by a signal; its cleanup has run", verb.Name);
    }
    else
    {
        log.Error("virtbackup {Verb} failed: {Message}", verb.Name, e.Message);
    }

    return code;
}
