namespace VirtBackup.IntegrationTests.Lab;

/// <summary>
/// <c>VIRTBACKUP_LONG_TESTS=1</c> turns on the long variants of lab tests (more backups, more boots); CI runs the short
/// ones, within its 30-minute budget.
/// </summary>
public static class LongTests
{
    public static bool Enabled => Environment.GetEnvironmentVariable("VIRTBACKUP_LONG_TESTS") == "1";
}
