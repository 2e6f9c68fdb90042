namespace VirtBackup.Core;

/// <summary>A check before the VM is touched failed; the message says what to do.</summary>
public sealed class PreflightException(string message, Exception? inner = null) : VirtBackupException(message, inner)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
