namespace VirtBackup.Tests.Remote;

/// <summary>The remote shell scripts are plain files (shellcheck lints them) and exactly those files are embedded.</summary>
public class RemoteScriptsTests
{
    private static readonly string Directory = Path.Combine(Architecture.CoreFolders.CoreDirectory, "Hosts", "Ssh", "Scripts");

    [Fact]
    public void Every_script_file_is_embedded_byte_for_byte_and_nothing_else_is()
    {
        var files = System.IO.Directory.GetFiles(Directory, "*.sh").Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        var embedded = typeof(RemoteScripts).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("VirtBackup.Core.Hosts.Ssh.Scripts.", StringComparison.Ordinal))
            .Select(n => n["VirtBackup.Core.Hosts.Ssh.Scripts.".Length..])
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.Equal(files, embedded);
        Assert.True(files.Count >= 20, $"only {files.Count} scripts");
        foreach (var file in files)
        {
            Assert.Equal(File.ReadAllText(Path.Combine(Directory, file)), RemoteScripts.Load(file));
        }
    }

    [Fact]
    public void A_script_that_is_not_embedded_is_named_in_the_error()
    {
        var e = Assert.Throws<InvalidOperationException>(() => RemoteScripts.Load("no-such-script.sh"));

        Assert.Contains("no-such-script.sh", e.Message);
    }
}
