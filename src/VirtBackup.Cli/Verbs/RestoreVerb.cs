using VirtBackup.Core.Hosts;
using VirtBackup.Core.Libvirt;
using VirtBackup.Core.Restore;
using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

internal sealed class RestoreVerb : IVerb
{
    public string Name => "restore";

    public string Summary => "restore a domain from a stream on stdin (a full/copy, or the next incremental of a restored chain), on this host or a qemu+ssh:// one";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("as", "restore as a new domain: new name, new UUID, new MAC addresses (default: the stream's name and UUID)", "NEWNAME"),
        new("disk-dir", $"where disk images go (default {RestoreOptions.DefaultDiskDirectory}); the chain position is kept in DIR/.virtbackup; QEMU's user must be able to enter DIR (checked: refused with --define, else a warning)", "DIR"),
        new("format", "image format of a full or copy restore: qcow2 (default) or raw; an incremental keeps the chain's", "FORMAT", ["qcow2", "raw"]),
        new("define", "define (or redefine) the domain in libvirt, pointing at the restored files"),
        new("force", "replace existing images, NVRAM, TPM state and a shut-off domain of the same name"),
        new("target-root", "write every file below DIR instead of / (Bacula's 'where'); libvirt is not consulted, --define is refused", "DIR"),
    ];

    public async Task<int> RunAsync(ParsedOptions options, VerbContext context, CancellationToken cancellationToken)
    {
        var restore = new RestoreOptions(
            options.Value("as"),
            options.Value("disk-dir") ?? RestoreOptions.DefaultDiskDirectory,
            options.Value("format") switch
            {
                "raw" => DiskFormat.Raw,
                "qcow2" => DiskFormat.Qcow2,
                _ => null,
            },
            options.Flag("define"),
            options.Flag("force"),
            options.Value("target-root"))
        {
            StopAtEndOfArchive = StreamInput.StopAtEndOfArchive,
        };
        try
        {
            restore.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        var input = StreamInput.Open(context, Name);
        var uri = Settings.ConnectUri(options, context);
        await using var host = await HostConnection.ConnectAsync(uri, null, context.Log, cancellationToken);
        using var libvirt = restore.TargetRoot is null ? LibvirtConnection.Open(uri) : null;
        var run = new RestoreRun(libvirt, host, await host.ReadQemuConfAsync(cancellationToken), context.Log);
        await run.RunAsync(restore, input, cancellationToken);
        return ExitCodes.Success;
    }
}
