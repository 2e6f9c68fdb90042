using VirtBackup.Core.Hosts;
using VirtBackup.Core.Restore.Qcow2;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// One disk being restored, provisional until <see cref="CommitAsync"/>, on the restored host (qemu-img and
/// qemu-nbd run there; for a remote host the data goes through the SSH connection):
/// <list type="bullet">
/// <item>a full or copy stream writes a new image in the staging directory (qcow2 or raw directly on this host,
/// through qemu-nbd on a remote one); committing renames it over the final name;</item>
/// <item>an incremental stream writes a qcow2 overlay (in the staging directory) on top of the restored image;
/// committing runs <c>qemu-img commit</c> into it. Applying an incremental writes absolute content, so if the
/// commit is interrupted, applying the same stream again repairs the image (the chain position still names
/// the parent checkpoint until every commit is done).</item>
/// </list>
/// Abandoned, it leaves only files in the staging directory, which goes away with the run.
/// </summary>
internal sealed class DiskRestore : IAsyncDisposable
{
    private readonly IImageWriter _writer;
    private readonly string _stagedPath;
    private readonly IHypervisorHost _host;
    private bool _finished;

    private DiskRestore(PlannedDisk plan, IImageWriter writer, string stagedPath, IHypervisorHost host)
    {
        Plan = plan;
        _writer = writer;
        _stagedPath = stagedPath;
        _host = host;
    }

    public PlannedDisk Plan { get; }

    public string Target => Plan.Target;

    public long DataBytes { get; private set; }

    public bool Finished => _finished;

    /// <summary>The requests sent to the image so far.</summary>
    public ImageWriteCounts Counts => _writer.Counts;

    public static async Task<DiskRestore> OpenAsync(PlannedDisk plan, StagingDirectory staging, IHypervisorHost host, CancellationToken cancellationToken)
    {
        try
        {
            if (plan.IsOverlay)
            {
                var overlay = staging.Combine($"{plan.Target}.overlay.qcow2");
                await host.Images.CreateOverlayAsync(overlay, plan.WrittenPath, FormatName(plan.Format), cancellationToken);
                return new DiskRestore(plan, await NbdImageWriter.OpenAsync(host.Images, overlay, "qcow2", newImage: false, cancellationToken), overlay, host);
            }

            var image = staging.Combine($"{plan.Target}.{(plan.Format == DiskFormat.Qcow2 ? "qcow2" : "img")}");
            if (!host.IsRemote)
            {
                IImageWriter writer = plan.Format == DiskFormat.Raw ? RawFileWriter.Create(image, plan.VirtualSize) : Qcow2FileWriter.Create(image, plan.VirtualSize);
                return new DiskRestore(plan, writer, image, host);
            }

            await host.Images.CreateAsync(image, FormatName(plan.Format), plan.VirtualSize, cancellationToken);
            return new DiskRestore(plan, await NbdImageWriter.OpenAsync(host.Images, image, FormatName(plan.Format), newImage: true, cancellationToken), image, host);
        }
        catch (Exception e) when (e is IOException or HostException)
        {
            throw new RestoreWriteException($"cannot create the image for disk {plan.Target} in '{staging.Path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Applies a map: its zero extents now (data follows in data members). Ranges the map does not list (unchanged in
    /// an incremental) get no request; on a new image the writer skips the zero extents too, as it reads as zeros.
    /// </summary>
    public Task ApplyZerosAsync(DiskMap map, CancellationToken cancellationToken) => Guard(async () =>
    {
        foreach (var extent in map.Extents.Where(e => e.Zero))
        {
            await _writer.ZeroAsync(extent.Offset, extent.Length, cancellationToken);
        }
    });

    /// <summary>Writes each segment of the member where it goes; the writer joins the segments that touch.</summary>
    public async Task WriteAsync(DiskDataMember member, CancellationToken cancellationToken)
    {
        await Guard(async () =>
        {
            foreach (var segment in member.Segments)
            {
                await _writer.WriteAsync(segment.DiskOffset, member.Data.Slice(segment.ContentOffset, segment.Length), cancellationToken);
            }
        });
        DataBytes += member.Length;
    }

    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (!_finished)
        {
            await Guard(() => _writer.FinishAsync(cancellationToken));
            _finished = true;
        }
    }

    /// <summary>Makes the restored content final. Only after the whole stream has been verified.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        if (!_finished)
        {
            throw new InvalidOperationException($"disk {Target} is committed before it was finished");
        }

        try
        {
            if (Plan.IsOverlay)
            {
                await _host.Images.CommitAsync(_stagedPath, cancellationToken);
                await _host.Files.DeleteTreeAsync(_stagedPath, cancellationToken);
            }
            else
            {
                await _host.Files.MoveAsync(_stagedPath, Plan.WrittenPath, cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or HostException)
        {
            throw new RestoreWriteException($"putting disk {Target} in place at '{Plan.WrittenPath}' failed: {e.Message}", e);
        }
    }

    public ValueTask DisposeAsync() => _writer.DisposeAsync();

    public static string FormatName(DiskFormat format) => format == DiskFormat.Qcow2 ? "qcow2" : "raw";

    private async Task Guard(Func<Task> write)
    {
        try
        {
            await write();
        }
        catch (Exception e) when (e is IOException or HostException)
        {
            throw new RestoreWriteException($"writing disk {Target} failed: {e.Message}", e);
        }
    }
}
