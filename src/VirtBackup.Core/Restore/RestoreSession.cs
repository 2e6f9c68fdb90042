using Serilog;
using VirtBackup.Core.Hosts;
using VirtBackup.Core.Stream;

namespace VirtBackup.Core.Restore;

/// <summary>
/// The provisional side of one restore: everything the stream carries is written into staging directories
/// (disk images or overlays next to the images, NVRAM and TPM state next to theirs) as the members arrive, and
/// becomes final only in <see cref="CommitAsync"/>, which the run calls after the reader has verified the
/// trailer. Disposing without a commit removes every staged file and leaves the previous state as it was.
/// Everything is written on the restored host: this machine, or a remote one through its <see cref="IHypervisorHost"/>.
/// </summary>
internal sealed class RestoreSession : IAsyncDisposable
{
    private const UnixFileMode ImagesDirectoryMode = StagingDirectory.Private | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private readonly ILogger _log;
    private readonly IHypervisorHost _host;
    private readonly HostStateWriter _state;
    private readonly List<DiskRestore> _disks = [];
    private StagingDirectory? _diskStaging;

    public RestoreSession(RestorePlan plan, IHypervisorHost host, ILogger log)
    {
        Plan = plan;
        _host = host;
        _log = log;
        var layout = plan.Layout;
        var nvram = layout.Written(layout.NvramPath);
        var tpm = layout.Written(layout.TpmStateDirectory(plan.Manifest.Tpm.Version));
        _state = new HostStateWriter(host.Files, nvram, tpm, plan.TpmOwner);
    }

    public RestorePlan Plan { get; }

    public string? DomainXml { get; set; }

    public long DataBytes => _disks.Sum(d => d.DataBytes);

    public void StageNvram(NvramMember member) => _state.StageNvram(member.Content.Span);

    public void StageTpmFile(TpmFileMember member) => _state.StageTpmFile(member.RelativePath, member.Content.Span);

    /// <summary>A disk's map, or one piece of it (version 3): the first piece starts the disk; every piece's zeros are applied.</summary>
    public async Task ApplyMapAsync(DiskMapMember map, CancellationToken cancellationToken)
    {
        if (map.IsFirstPiece)
        {
            await BeginDiskAsync(map, cancellationToken);
        }

        await _disks[^1].ApplyZerosAsync(map.Map, cancellationToken);
    }

    private async Task BeginDiskAsync(DiskMapMember map, CancellationToken cancellationToken)
    {
        await FinishCurrentDiskAsync(cancellationToken);
        var plan = Plan.Disk(map.Disk.Target) ?? throw new InvalidOperationException($"disk {map.Disk.Target} was not planned");
        if (_diskStaging is null)
        {
            var directory = Plan.Layout.Written(Plan.Layout.DiskDirectory);
            await _host.Files.CreateDirectoryAsync(directory, ImagesDirectoryMode, cancellationToken);
            _diskStaging = await StagingDirectory.CreateAsync(_host.Files, directory, cancellationToken);
        }

        var disk = await DiskRestore.OpenAsync(plan, _diskStaging, _host, cancellationToken);
        _disks.Add(disk);
        var kind = plan.IsOverlay ? "changes, through an overlay" : DiskRestore.FormatName(plan.Format);
        if (map.IsLastPiece)
        {
            var data = map.Map.Extents.Where(e => !e.Zero).Sum(e => e.Length);
            _log.Information("restoring disk {Target} ({Kind}): {DataMiB:F1} MiB of data into {Path}", plan.Target, kind, data / 1048576.0, plan.WrittenPath);
        }
        else
        {
            // A map in pieces: the amount of data is known at the end (the completion line gives it).
            _log.Information("restoring disk {Target} ({Kind}) into {Path}", plan.Target, kind, plan.WrittenPath);
        }
    }

    public Task WriteAsync(DiskDataMember member, CancellationToken cancellationToken) => _disks[^1].WriteAsync(member, cancellationToken);

    /// <summary>Every disk's writes flushed and its writer closed: what is left is renaming and committing.</summary>
    public Task FinishDisksAsync(CancellationToken cancellationToken) => FinishCurrentDiskAsync(cancellationToken);

    /// <summary>
    /// Makes the restore final, in an order that keeps a crash safe: a commit marker naming the stream, the disk
    /// images, NVRAM and TPM state, the definition file and the chain position, then the marker goes. A crash in
    /// between leaves the marker: only the same stream (or a full with --force) is accepted next, and applying an
    /// incremental again is safe because it writes absolute content.
    /// </summary>
    public async Task<ChainPosition> CommitAsync(string definition, CancellationToken cancellationToken)
    {
        await FinishCurrentDiskAsync(cancellationToken);
        var store = Plan.Layout.ChainStore(_host.Files);
        await store.MarkCommittingAsync(Plan.Name, ChainPosition.StreamIdOf(Plan.Manifest), cancellationToken);
        foreach (var disk in _disks)
        {
            await disk.CommitAsync(cancellationToken);
        }

        if (_disks.Count > 0)
        {
            await _host.Files.SyncAsync(Plan.Layout.Written(Plan.Layout.DiskDirectory), cancellationToken);
        }

        await _state.CommitAsync(cancellationToken);
        var position = Plan.NextPosition(await RestoredDisksAsync(cancellationToken));
        await store.SaveDefinitionAsync(Plan.Name, definition, cancellationToken);
        await store.SaveAsync(position, cancellationToken);
        await store.ClearCommitMarkerAsync(Plan.Name, cancellationToken);
        await store.SyncAsync(cancellationToken);
        return position;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var disk in _disks)
        {
            await disk.DisposeAsync();
        }

        if (_diskStaging is not null)
        {
            await _diskStaging.DisposeAsync();
        }
    }

    private async Task FinishCurrentDiskAsync(CancellationToken cancellationToken)
    {
        if (_disks.Count > 0 && !_disks[^1].Finished)
        {
            var disk = _disks[^1];
            await disk.FinishAsync(cancellationToken);
            var counts = disk.Counts;
            _log.Debug("disk {Target} written: {Writes} write requests of {WriteBytes} bytes, {Zeroes} zero requests for {ZeroBytes} bytes",
                disk.Target, counts.Writes, counts.WriteBytes, counts.Zeroes, counts.ZeroBytes);
        }
    }

    /// <summary>The restored images after the commit: this stream's disks with their new mtimes, plus untouched earlier ones.</summary>
    private async Task<List<RestoredDisk>> RestoredDisksAsync(CancellationToken cancellationToken)
    {
        var disks = new List<RestoredDisk>();
        foreach (var d in Plan.Disks)
        {
            var status = await _host.Files.StatAsync(d.WrittenPath, cancellationToken)
                ?? throw new RestoreWriteException($"the restored image '{d.WrittenPath}' disappeared during the commit");
            disks.Add(new RestoredDisk(d.Target, d.HostPath, d.Format, d.VirtualSize, status.ModifiedUtcTicks));
        }

        if (Plan.IsIncremental)
        {
            disks.AddRange(Plan.Previous!.Disks.Where(p => disks.All(d => d.Target != p.Target)));
            disks.Sort((a, b) => string.CompareOrdinal(a.Target, b.Target));
        }

        return disks;
    }
}
