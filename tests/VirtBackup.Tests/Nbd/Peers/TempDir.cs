namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>A unique directory under /tmp, deleted on dispose. Unix socket paths must stay short.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine("/tmp", $"vbnbd-{Guid.NewGuid():N}"[..18]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A peer may still be releasing a file; /tmp is cleaned eventually.
        }
    }
}
