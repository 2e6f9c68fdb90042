namespace VirtBackup.Core.Capture;

/// <summary>
/// One virtbackup at a time per domain: an exclusive lock on <c>STATE_DIR/UUID/lock</c> (flock, so the
/// kernel releases it when the process dies, SIGKILL included). Backups of different domains never wait.
/// </summary>
public sealed class DomainLock : IDisposable
{
    private readonly FileStream _file;

    private DomainLock(FileStream file) => _file = file;

    public static DomainLock Acquire(string domainStateDirectory, string domainName)
    {
        var path = Path.Combine(domainStateDirectory, "lock");
        try
        {
            return new DomainLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e)
        {
            // .NET maps a held flock to an IOException on open: another virtbackup works on this domain.
            throw new PreflightException(
                $"another virtbackup is working on '{domainName}' (lock '{path}' is held); wait for it to finish, the VM was not touched", e);
        }
    }

    public void Dispose() => _file.Dispose();
}
