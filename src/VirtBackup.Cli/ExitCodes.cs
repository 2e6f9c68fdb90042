using VirtBackup.Core;

namespace VirtBackup.CliApp;

/// <summary>The documented exit codes, and the one place that maps exceptions to them.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int InternalError = 1;
    public const int Usage = 2;
    public const int Libvirt = 3;
    public const int Refused = 4;
    public const int DiskTransfer = 5;
    public const int InvalidStream = 6;
    public const int BrokenPipe = 7;
    public const int Interrupted = 8;
    public const int BootFailed = 9;

    public static readonly IReadOnlyList<(int Code, string Meaning)> Documented =
    [
        (Success, "the stream or restore is complete and cleanup is done"),
        (InternalError, "an unexpected internal error (a bug: please report it with the log)"),
        (Usage, "invalid arguments: unknown verb or option, missing or bad value"),
        (Libvirt, "libvirt refused or failed an operation, or the domain does not exist"),
        (Refused, "a preflight check refused to start (permissions, lock held, terminal on stdout or stdin, stdout or stdin closed by the shell, existing target, a gap in a restored chain)"),
        (DiskTransfer, "reading or writing disk data failed (NBD, qemu-img, qemu-nbd, image files)"),
        (InvalidStream, "the input stream is incomplete, corrupted or not a VirtBackup stream"),
        (BrokenPipe, "the consumer closed stdout (or the producer closed stdin) before the end"),
        (Interrupted, "interrupted by a signal; the VM was resumed and the job aborted"),
        (BootFailed, "verify --boot: the backup did not come up (did not start or stopped, swtpm refused its TPM state, no agent answer or console match in time)"),
    ];

    /// <summary>Maps any exception that escaped a verb to its exit code.</summary>
    public static int For(Exception exception) => exception switch
    {
        UsageException => Usage,
        OperationCanceledException => Interrupted,
        VirtBackupException e => ForCore(e),
        IOException io when IsBrokenPipe(io) => BrokenPipe,
        _ => InternalError,
    };

    private static int ForCore(VirtBackupException e) => e.Category switch
    {
        ErrorCategory.Libvirt => Libvirt,
        ErrorCategory.Refused => Refused,
        ErrorCategory.DiskTransfer => DiskTransfer,
        ErrorCategory.InvalidStream => InvalidStream,
        ErrorCategory.BrokenPipe => BrokenPipe,
        ErrorCategory.Interrupted => Interrupted,
        _ => InternalError,
    };

    /// <summary>EPIPE surfaces from .NET as an IOException with the "Broken pipe" errno 32.</summary>
    public static bool IsBrokenPipe(IOException io) =>
        io.HResult == 32 || (io.InnerException is IOException inner && inner.HResult == 32)
        || io.Message.Contains("Broken pipe", StringComparison.OrdinalIgnoreCase);
}
