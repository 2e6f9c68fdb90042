using VirtBackup.Core.Platform;

namespace VirtBackup.Core.Restore;

/// <summary>
/// Puts the NVRAM file and the TPM state directory in place, never visible half-written and never readable by
/// anyone but their owner: each is first written (files 0600, directories 0700) into a private staging directory
/// next to its target, chowned there, and renamed into place by <see cref="Commit"/> — the TPM directory with an
/// atomic exchange when one exists already. Until then the previous files stay untouched; <see cref="Dispose"/>
/// removes whatever was staged (and the replaced TPM state after a commit).
/// <para>Local files only: a remote host gets its state through <see cref="HostStateWriter"/>.</para>
/// </summary>
public sealed class StateFileWriter : IStateWriter, IDisposable
{
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = StagingDirectory.Private;
    private const UnixFileMode Traversable = PrivateDirectory | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode Readable = PrivateDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private readonly string _nvramPath;
    private readonly string _tpmDirectory;
    private readonly (int Uid, int Gid)? _tpmOwner;
    private StagingDirectory? _nvramStaging;
    private StagingDirectory? _tpmStaging;
    private string? _createdDomainDirectory;
    private bool _committed;

    /// <param name="nvramPath">The NVRAM file to write (as written: under the target root, if any).</param>
    /// <param name="tpmDirectory">The swtpm state directory to write (<c>.../swtpm/UUID/tpm2</c>, as written).</param>
    /// <param name="tpmOwner">swtpm's uid and gid for the TPM state; null leaves this process as the owner.</param>
    public StateFileWriter(string nvramPath, string tpmDirectory, (int Uid, int Gid)? tpmOwner)
    {
        _nvramPath = nvramPath;
        _tpmDirectory = tpmDirectory;
        _tpmOwner = tpmOwner;
    }

    public bool HasNvram => _nvramStaging is not null;

    public bool HasTpm => _tpmStaging is not null;

    private string StagedNvram => _nvramStaging!.Combine(Path.GetFileName(_nvramPath));

    private string StagedTpm => _tpmStaging!.Combine(Path.GetFileName(_tpmDirectory));

    public void StageNvram(ReadOnlySpan<byte> content)
    {
        if (_nvramStaging is not null)
        {
            throw new InvalidOperationException("the NVRAM is staged once");
        }

        // libvirt keeps the NVRAM directory world-readable (0755): create it the same way if it is missing.
        CreateDirectories(Path.GetDirectoryName(_nvramPath)!, Readable);
        _nvramStaging = StagingDirectory.Create(Path.GetDirectoryName(_nvramPath)!);
        WriteFile(StagedNvram, content, owner: null);
    }

    /// <param name="relativePath">Checked by the stream reader: '/'-separated safe segments, no '..'.</param>
    public void StageTpmFile(string relativePath, ReadOnlySpan<byte> content)
    {
        if (_tpmStaging is null)
        {
            // libvirt makes /var/lib/libvirt/swtpm and swtpm/UUID root-owned 0711.
            var domainDirectory = Path.GetDirectoryName(_tpmDirectory)!;
            if (!Directory.Exists(domainDirectory))
            {
                CreateDirectories(domainDirectory, Traversable);
                _createdDomainDirectory = domainDirectory;
            }

            _tpmStaging = StagingDirectory.Create(domainDirectory);
            CreatePrivateDirectory(StagedTpm);
        }

        var path = _tpmStaging.Combine(Path.Combine(Path.GetFileName(_tpmDirectory), relativePath));
        // Subdirectories (swtpm 0.7 makes none) are created outermost first.
        var parents = new Stack<string>();
        for (var dir = Path.GetDirectoryName(path)!; dir != StagedTpm; dir = Path.GetDirectoryName(dir)!)
        {
            parents.Push(dir);
        }

        foreach (var dir in parents.Where(d => !Directory.Exists(d)))
        {
            CreatePrivateDirectory(dir);
        }

        WriteFile(path, content, _tpmOwner);
    }

    /// <summary>Renames what was staged into place. Call only once the stream is proven complete.</summary>
    public void Commit()
    {
        try
        {
            if (_nvramStaging is not null)
            {
                File.Move(StagedNvram, _nvramPath, overwrite: true);
                Posix.FsyncDirectory(Path.GetDirectoryName(_nvramPath)!);
            }

            if (_tpmStaging is not null)
            {
                if (Directory.Exists(_tpmDirectory))
                {
                    // Both names stay valid throughout; the old state ends up in the staging directory and goes with it.
                    Posix.RenameExchange(StagedTpm, _tpmDirectory);
                }
                else
                {
                    Directory.Move(StagedTpm, _tpmDirectory);
                }

                Posix.FsyncDirectory(Path.GetDirectoryName(_tpmDirectory)!);
            }

            _committed = true;
        }
        catch (IOException e)
        {
            throw new RestoreWriteException($"putting the restored NVRAM/TPM state in place failed: {e.Message}", e);
        }
    }

    Task IStateWriter.CommitAsync(CancellationToken cancellationToken)
    {
        Commit();
        return Task.CompletedTask;
    }

    ValueTask IAsyncDisposable.DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        _nvramStaging?.Dispose();
        _tpmStaging?.Dispose();
        if (!_committed && _createdDomainDirectory is { } created && !Directory.EnumerateFileSystemEntries(created).Any())
        {
            // The per-UUID directory was made for this restore only: an empty one would only mislead.
            Directory.Delete(created);
        }
    }

    private void CreatePrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, PrivateDirectory);
        if (_tpmOwner is { } owner)
        {
            Posix.Chown(path, owner.Uid, owner.Gid);
        }
    }

    private static void CreateDirectories(string path, UnixFileMode mode)
    {
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, mode);
        }
    }

    private static void WriteFile(string path, ReadOnlySpan<byte> content, (int Uid, int Gid)? owner)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile };
            using (var stream = new FileStream(path, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            if (owner is { } o)
            {
                Posix.Chown(path, o.Uid, o.Gid);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RestoreWriteException($"writing '{path}' failed: {e.Message}", e);
        }
    }
}
