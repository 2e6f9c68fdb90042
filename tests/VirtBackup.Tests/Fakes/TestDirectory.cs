namespace VirtBackup.Tests.Fakes;

/// <summary>A new directory of its own under the temporary directory, removed on dispose (tests run in parallel).</summary>
internal sealed class TestDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("virtbackup-unit-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
