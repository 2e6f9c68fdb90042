namespace VirtBackup.IntegrationTests;

public class SmokeTests
{
    [Fact]
    public void The_test_project_builds_and_runs() => Assert.True(true);
}
