namespace VirtBackup.Core.Restore;

/// <summary>Puts a restored domain's NVRAM file and TPM state directory in place, only on <see cref="CommitAsync"/>.</summary>
public interface IStateWriter : IAsyncDisposable
{
    void StageNvram(ReadOnlySpan<byte> content);

    /// <param name="relativePath">Checked by the stream reader: '/'-separated safe segments, no '..'.</param>
    void StageTpmFile(string relativePath, ReadOnlySpan<byte> content);

    /// <summary>Puts what was staged in place. Call only once the stream is proven complete.</summary>
    Task CommitAsync(CancellationToken cancellationToken);
}
