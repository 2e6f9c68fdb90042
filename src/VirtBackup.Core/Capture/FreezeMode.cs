namespace VirtBackup.Core.Capture;

/// <summary><c>--freeze</c>: whether to freeze guest file systems through the guest agent.</summary>
public enum FreezeMode
{
    /// <summary>Freeze when an agent answers; go on without when none does.</summary>
    Auto,

    /// <summary>Freeze, and fail before pausing when no agent answers.</summary>
    On,

    /// <summary>Never freeze.</summary>
    Off,
}
