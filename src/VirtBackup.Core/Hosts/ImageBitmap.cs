namespace VirtBackup.Core.Hosts;

/// <summary>
/// A persistent dirty bitmap stored in a qcow2 image, as <c>qemu-img info</c> lists it (format-specific data, bitmaps).
/// libvirt keeps one per checkpoint in every qcow2 disk of it, named like the checkpoint, and every one of them records.
/// </summary>
/// <param name="Enabled">The <c>auto</c> flag: the bitmap records the writes of whoever opens the image next.</param>
/// <param name="InUse">The <c>in-use</c> flag on an image no QEMU holds: the last QEMU did not store the bitmap when it
/// stopped (a crash, a kill), so it may miss writes.</param>
public sealed record ImageBitmap(string Name, bool Enabled, bool InUse)
{
    public const string EnabledFlag = "auto";
    public const string InUseFlag = "in-use";
}
