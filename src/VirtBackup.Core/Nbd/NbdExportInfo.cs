namespace VirtBackup.Core.Nbd;

/// <summary>An export as announced by NBD_OPT_LIST: its name and the server's optional description.</summary>
public sealed record NbdExportInfo(string Name, string Description);

/// <summary>What NBD_OPT_GO (or the NBD_OPT_EXPORT_NAME fallback) told us about the chosen export.</summary>
internal sealed record NbdExportDetails(
    long Size,
    ushort TransmissionFlags,
    uint MinimumBlockSize,
    uint PreferredBlockSize,
    uint MaximumBlockSize,
    bool BlockSizeAdvertised);
