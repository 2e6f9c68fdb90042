namespace VirtBackup.Core.Hosts;

/// <summary>What <c>qemu-img info</c> says of an image that the restore and offline backup need.</summary>
public sealed record ImageInfo(string Format, long VirtualSize, long ActualSize, IReadOnlyList<ImageBitmap> Bitmaps)
{
    /// <summary>The bitmap called <paramref name="name"/>, or null when the image has none of that name.</summary>
    public ImageBitmap? Bitmap(string name) => Bitmaps.FirstOrDefault(b => b.Name == name);
}
