namespace VirtBackup.Core.Consolidate;

/// <summary>The inputs cannot be consolidated (e.g. a copy, or a terminal on stdout).</summary>
public sealed class ConsolidateRefusedException(string message) : VirtBackupException(message)
{
    public override ErrorCategory Category => ErrorCategory.Refused;
}
