namespace VirtBackup.Core.Backup;

/// <summary>A byte range of one disk that a stream carries: data to store, or zeros to record.</summary>
public readonly record struct PlannedExtent(long Offset, long Length, bool Zero)
{
    public long End => Offset + Length;
}
