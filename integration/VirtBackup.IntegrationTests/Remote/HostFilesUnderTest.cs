namespace VirtBackup.IntegrationTests.Remote;

/// <summary>The host files a test runs against: this machine's ("local"), or the SSH lab's ("ssh").</summary>
internal sealed record HostFilesUnderTest(IHostFiles Files, SshSession? Session) : IAsyncDisposable
{
    public static async Task<HostFilesUnderTest> OpenAsync(string kind)
    {
        if (kind == "local")
        {
            return new HostFilesUnderTest(new LocalHostFiles(), null);
        }

        var session = await SshLab.ConnectAsync();
        return new HostFilesUnderTest(new SshHostFiles(session), session);
    }

    public async ValueTask DisposeAsync()
    {
        if (Session is not null)
        {
            await Session.DisposeAsync();
        }
    }
}
