namespace VirtBackup.Core.Capture;

/// <summary>
/// A durable note "virtbackup paused this VM", written just before the pause and removed just after
/// the resume. If virtbackup is killed (SIGKILL) in between, the next run finds it and resumes the VM;
/// a VM paused by someone else has no marker and is left alone.
/// </summary>
public sealed class PausedMarker(string domainStateDirectory)
{
    public string Path { get; } = System.IO.Path.Combine(domainStateDirectory, "paused-by-virtbackup");

    public bool Exists => File.Exists(Path);

    public void Set()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        File.WriteAllText(Path, $"{Environment.ProcessId}\n");
    }

    public void Clear() => File.Delete(Path);
}
