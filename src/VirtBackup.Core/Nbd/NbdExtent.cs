namespace VirtBackup.Core.Nbd;

/// <summary>
/// One block-status extent: <see cref="Length"/> bytes from <see cref="Offset"/> that share <see cref="Flags"/>.
/// The meaning of the flags depends on the metadata context: base:allocation uses bit 0 for "hole" and
/// bit 1 for "reads as zeroes"; qemu:dirty-bitmap:NAME uses bit 0 for "dirty".
/// </summary>
public readonly record struct NbdExtent(long Offset, long Length, uint Flags)
{
    /// <summary>Exclusive end of the extent.</summary>
    public long End => Offset + Length;

    /// <summary>base:allocation: not allocated on the server (NBD_STATE_HOLE).</summary>
    public bool IsHole => (Flags & NbdProtocol.StateHole) != 0;

    /// <summary>base:allocation: reads as zeroes (NBD_STATE_ZERO).</summary>
    public bool IsZero => (Flags & NbdProtocol.StateZero) != 0;

    /// <summary>qemu:dirty-bitmap:NAME: changed since the bitmap was enabled.</summary>
    public bool IsDirty => (Flags & NbdProtocol.StateDirty) != 0;
}
